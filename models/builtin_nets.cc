// Built-in architectures (C++ frontend, fastest to train) and their export
// as TorchScript: a torch::jit::Module that shares the trained tensors and
// whose forward is written in TorchScript (torch.jit.load in PyTorch runs
// it; its state_dict keys match the PyTorch definitions in
// examples/pytorch/builtin_models.py).
#include <stdexcept>

#include "models/internal/net.h"

namespace samverka::models::internal {
namespace {

namespace nn = torch::nn;

int64_t Product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Logistic regression: one linear layer on the flattened input.
struct LogReg : nn::Module {
  LogReg(int64_t in, int64_t classes) : fc(register_module("fc", nn::Linear(in, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::flatten(x, 1)); }
  nn::Linear fc;
};

// McMahan et al. 2017's "2NN": 784-200-200-10 with ReLU.
struct Mlp : nn::Module {
  Mlp(int64_t in, int64_t classes)
      : fc1(register_module("fc1", nn::Linear(in, 200))),
        fc2(register_module("fc2", nn::Linear(200, 200))),
        fc3(register_module("fc3", nn::Linear(200, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = torch::relu(fc1(torch::flatten(x, 1)));
    h = torch::relu(fc2(h));
    return fc3(h);
  }
  nn::Linear fc1, fc2, fc3;
};

// McMahan et al. 2017's CNN: 5x5 conv 32, 2x2 max-pool, 5x5 conv 64, 2x2
// max-pool, fully connected 512, fully connected to the classes.
struct Cnn : nn::Module {
  Cnn(int64_t channels, int64_t height, int64_t width, int64_t classes)
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(channels, 32, 5).padding(2)))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)))),
        fc1(register_module("fc1", nn::Linear(64 * (height / 4) * (width / 4), 512))),
        fc2(register_module("fc2", nn::Linear(512, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = torch::max_pool2d(torch::relu(conv1(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2(h)), 2);
    h = torch::relu(fc1(torch::flatten(h, 1)));
    return fc2(h);
  }
  nn::Conv2d conv1, conv2;
  nn::Linear fc1, fc2;
};

constexpr char kLogRegScript[] = R"(
def forward(self, x):
    return torch.linear(torch.flatten(x, 1), self.fc.weight, self.fc.bias)
)";

constexpr char kMlpScript[] = R"(
def forward(self, x):
    h = torch.relu(torch.linear(torch.flatten(x, 1), self.fc1.weight, self.fc1.bias))
    h = torch.relu(torch.linear(h, self.fc2.weight, self.fc2.bias))
    return torch.linear(h, self.fc3.weight, self.fc3.bias)
)";

constexpr char kCnnScript[] = R"(
def forward(self, x):
    h = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv1.weight, self.conv1.bias, [1, 1], [2, 2])), [2, 2])
    h = torch.max_pool2d(torch.relu(torch.conv2d(h, self.conv2.weight, self.conv2.bias, [1, 1], [2, 2])), [2, 2])
    h = torch.relu(torch.linear(torch.flatten(h, 1), self.fc1.weight, self.fc1.bias))
    return torch.linear(h, self.fc2.weight, self.fc2.bias)
)";

// Adapts a frontend module to Net. `Module` is one of the structs above.
template <typename Module>
class FrontendNet : public Net {
 public:
  FrontendNet(std::string type, std::shared_ptr<Module> module, const char* script,
              std::function<std::unique_ptr<Net>()> factory)
      : type_(std::move(type)),
        module_(std::move(module)),
        script_(script),
        factory_(std::move(factory)) {}

  torch::Tensor Forward(const torch::Tensor& input) override { return module_->forward(input); }
  std::vector<torch::Tensor> TrainableParameters() override { return module_->parameters(); }
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& item : module_->named_parameters()) out.emplace_back(item.key(), item.value());
    return out;
  }
  void SetTraining(bool training) override { module_->train(training); }

  void Save(const std::string& path) override {
    torch::NoGradGuard no_grad;
    torch::jit::Module top(type_);
    // Group "conv1.weight" into a submodule "conv1" with parameter "weight".
    std::map<std::string, torch::jit::Module> children;
    std::vector<std::string> order;
    for (const auto& item : module_->named_parameters()) {
      const std::string& name = item.key();
      const size_t dot = name.find('.');
      const std::string child = name.substr(0, dot);
      if (!children.contains(child)) {
        children.emplace(child, torch::jit::Module(child));
        order.push_back(child);
      }
      torch::Tensor copy = item.value().detach().clone();
      copy.set_requires_grad(true);  // so the exported model trains when reloaded
      children.at(child).register_parameter(name.substr(dot + 1), copy, /*is_buffer=*/false);
    }
    for (const std::string& child : order) top.register_module(child, children.at(child));
    top.define(script_);
    top.eval();
    top.save(path);
  }

  std::unique_ptr<Net> CloneArchitecture() override { return factory_(); }

 private:
  std::string type_;
  std::shared_ptr<Module> module_;
  const char* script_;
  std::function<std::unique_ptr<Net>()> factory_;
};

template <typename Module, typename... Args>
std::unique_ptr<Net> Make(std::string type, const char* script,
                          std::function<std::unique_ptr<Net>()> factory, Args... args) {
  return std::make_unique<FrontendNet<Module>>(std::move(type),
                                               std::make_shared<Module>(args...), script,
                                               std::move(factory));
}

}  // namespace

std::vector<std::string> BuiltinNetNames() { return {"cnn", "logreg", "mlp"}; }

std::unique_ptr<Net> MakeBuiltinNet(const std::string& name,
                                    const std::vector<int64_t>& input_shape,
                                    int64_t num_outputs) {
  const int64_t num_classes = num_outputs;
  auto again = [=] { return MakeBuiltinNet(name, input_shape, num_classes); };
  if (num_outputs < 1) throw std::invalid_argument("a model needs at least 1 output");
  if (name == "logreg") {
    return Make<LogReg>("LogReg", kLogRegScript, again, Product(input_shape), num_classes);
  }
  if (name == "mlp") {
    return Make<Mlp>("Mlp", kMlpScript, again, Product(input_shape), num_classes);
  }
  if (name == "cnn") {
    if (input_shape.size() != 3 || input_shape[1] < 4 || input_shape[2] < 4) {
      throw std::invalid_argument(
          "model 'cnn' needs image input shaped [channels, height, width] of at least 4x4; "
          "use 'mlp' or 'logreg' for tabular data");
    }
    return Make<Cnn>("Cnn", kCnnScript, again, input_shape[0], input_shape[1], input_shape[2],
                     num_classes);
  }
  return nullptr;
}

}  // namespace samverka::models::internal
