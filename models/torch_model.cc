// The Model implementation over LibTorch: parameter exchange through flat
// float vectors, the local SGD loop and evaluation. Every LibTorch call is
// wrapped so that c10::Error never leaves models/.
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/malloc_tuning.h"
#include "common/random.h"
#include "common/status_macros.h"
#include "models/internal/net.h"
#include "models/model.h"
#include "models/tasks/internal/losses.h"

namespace samverka::models {
namespace {

using internal::Net;

// First line of an exception message (LibTorch appends long backtraces).
std::string Brief(const std::exception& e) {
  std::string what = e.what();
  const size_t newline = what.find('\n');
  return newline == std::string::npos ? what : what.substr(0, newline);
}

// A TorchScript module made in PyTorch with torch.jit.script or trace.
class ScriptedNet : public Net {
 public:
  explicit ScriptedNet(torch::jit::Module module) : module_(std::move(module)) {
    // A module saved with every parameter frozen (e.g. after
    // requires_grad_(False) for inference) is made trainable again.
    bool any_trainable = false;
    for (const torch::Tensor& p : module_.parameters()) any_trainable |= p.requires_grad();
    if (!any_trainable) {
      for (torch::Tensor p : module_.parameters()) p.requires_grad_(true);
    }
  }

  torch::Tensor Forward(const torch::Tensor& input) override {
    return module_.forward({input}).toTensor();
  }
  std::vector<torch::Tensor> TrainableParameters() override {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : module_.parameters()) {
      if (p.requires_grad()) out.push_back(p);
    }
    return out;
  }
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& item : module_.named_parameters(/*recurse=*/true)) {
      out.emplace_back(item.name, item.value);
    }
    // Float buffers (batch-norm running statistics) are averaged too; integer
    // buffers such as num_batches_tracked stay local.
    for (const auto& item : module_.named_buffers(/*recurse=*/true)) {
      if (item.value.scalar_type() == torch::kFloat) out.emplace_back(item.name, item.value);
    }
    return out;
  }
  void SetTraining(bool training) override { module_.train(training); }
  bool HasLoss() override { return module_.find_method("loss").has_value(); }
  torch::Tensor Loss(const torch::Tensor& output, const torch::Tensor& target) override {
    return module_.get_method("loss")({output, target}).toTensor();
  }
  void Save(const std::string& path) override {
    module_.eval();
    module_.save(path);
  }
  std::unique_ptr<Net> CloneArchitecture() override {
    // jit::Module::clone() under grad mode makes non-leaf parameters, which
    // the optimiser refuses; clone without grad and restore the flags.
    std::vector<bool> requires_grad;
    for (const torch::Tensor& p : module_.parameters()) requires_grad.push_back(p.requires_grad());
    torch::jit::Module copy;
    {
      torch::NoGradGuard no_grad;
      copy = module_.clone();
    }
    size_t i = 0;
    for (torch::Tensor p : copy.parameters()) p.requires_grad_(requires_grad[i++]);
    return std::make_unique<ScriptedNet>(std::move(copy));
  }

 private:
  torch::jit::Module module_;
};

// Copies `indices[begin, end)` of `data` into a batch tensor, labels and,
// when the data has them, targets shaped [count, target_shape...].
void GatherBatch(const Dataset& data, std::span<const int64_t> indices, size_t begin,
                 size_t end, const std::vector<int64_t>& batch_shape_tail,
                 torch::Tensor* inputs, torch::Tensor* labels, torch::Tensor* targets) {
  const int64_t count = static_cast<int64_t>(end - begin);
  const int64_t sample_size = data.sample_size();
  std::vector<int64_t> shape = {count};
  shape.insert(shape.end(), batch_shape_tail.begin(), batch_shape_tail.end());
  *inputs = torch::empty(shape, torch::kFloat);
  *labels = torch::empty({count}, torch::kLong);
  float* x = inputs->data_ptr<float>();
  int64_t* y = labels->data_ptr<int64_t>();
  for (size_t i = begin; i < end; ++i) {
    const int64_t row = indices[i];
    std::memcpy(x, data.features.data() + row * sample_size, sample_size * sizeof(float));
    x += sample_size;
    *y++ = data.labels[row];
  }
  const int64_t target_size = data.target_size();
  if (target_size == 0) {
    *targets = torch::Tensor();
    return;
  }
  std::vector<int64_t> target_shape = {count};
  target_shape.insert(target_shape.end(), data.target_shape.begin(), data.target_shape.end());
  *targets = torch::empty(target_shape, torch::kFloat);
  float* t = targets->data_ptr<float>();
  for (size_t i = begin; i < end; ++i) {
    std::memcpy(t, data.targets.data() + indices[i] * target_size, target_size * sizeof(float));
    t += target_size;
  }
}

// The target a scripted `loss` method is given: the labels for
// classification, the float targets otherwise.
const torch::Tensor& LossTarget(TaskType task, const torch::Tensor& labels,
                                const torch::Tensor& targets) {
  return task == TaskType::kClassification ? labels : targets;
}


class TorchModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<TorchModel>> Create(std::string name,
                                                            std::unique_ptr<Net> net,
                                                            std::vector<int64_t> input_shape,
                                                            int64_t num_classes,
                                                            TaskOptions task) {
    auto model = std::unique_ptr<TorchModel>(new TorchModel(
        std::move(name), std::move(net), std::move(input_shape), num_classes, std::move(task)));
    SV_RETURN_IF_ERROR(model->Initialise());
    return model;
  }

  const std::string& name() const override { return name_; }
  const ParameterLayout& layout() const override { return layout_; }

  void GetParameters(std::span<float> out) const override {
    float* dst = out.data();
    for (const torch::Tensor& t : state_) {
      std::memcpy(dst, t.data_ptr<float>(), t.numel() * sizeof(float));
      dst += t.numel();
    }
  }

  absl::Status SetParameters(std::span<const float> values) override {
    if (static_cast<int64_t>(values.size()) != layout_.num_elements()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", name_, "' has ", layout_.num_elements(), " parameters; got ", values.size()));
    }
    torch::NoGradGuard no_grad;
    const float* src = values.data();
    for (torch::Tensor& t : state_) {
      std::memcpy(t.data_ptr<float>(), src, t.numel() * sizeof(float));
      src += t.numel();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<TrainStats> Train(const Dataset& data, std::span<const int64_t> indices,
                                   const TrainOptions& options, uint64_t seed) override {
    SV_RETURN_IF_ERROR(options.Validate());
    SV_RETURN_IF_ERROR(CheckData(data));
    std::vector<int64_t> order = AllOrSome(data, indices);
    try {
      return TrainLoop(data, order, options, seed);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("training '", name_, "' failed: ", Brief(e)));
    }
  }

  absl::StatusOr<EvalStats> Evaluate(const Dataset& data, std::span<const int64_t> indices,
                                     int batch_size) override {
    SV_RETURN_IF_ERROR(CheckData(data));
    std::vector<int64_t> rows = AllOrSome(data, indices);
    try {
      return EvalLoop(data, rows, std::max(1, batch_size));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("evaluating '", name_, "' failed: ", Brief(e)));
    }
  }

  absl::Status SaveTorchScript(const std::string& path) const override {
    try {
      net_->Save(path);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("cannot save model to ", path, ": ", Brief(e)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Model>> Clone() const override {
    std::unique_ptr<Net> net;
    try {
      net = net_->CloneArchitecture();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("cannot clone '", name_, "': ", Brief(e)));
    }
    SV_ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> copy,
                        Create(name_, std::move(net), input_shape_, num_classes_, task_));
    std::vector<float> values(layout_.num_elements());
    GetParameters(values);
    SV_RETURN_IF_ERROR(copy->SetParameters(values));
    return std::unique_ptr<Model>(std::move(copy));
  }

 private:
  TorchModel(std::string name, std::unique_ptr<Net> net, std::vector<int64_t> input_shape,
             int64_t num_classes, TaskOptions task)
      : name_(std::move(name)),
        net_(std::move(net)),
        input_shape_(std::move(input_shape)),
        num_classes_(num_classes),
        task_(std::move(task)) {}

  // Builds the layout and checks the net maps one sample to the task's
  // output width.
  absl::Status Initialise() {
    SV_RETURN_IF_ERROR(task_.Validate());
    if (task_.type == TaskType::kClassification && num_classes_ < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", name_, "': a classifier needs at least 2 classes, got ", num_classes_));
    }
    if (!task_.class_weights.empty()) {
      if (static_cast<int64_t>(task_.class_weights.size()) != num_classes_) {
        return absl::InvalidArgumentError(absl::StrCat(task_.class_weights.size(),
                                                       " class_weights for ", num_classes_,
                                                       " classes; give one weight per class"));
      }
      class_weights_ = torch::tensor(
          std::vector<float>(task_.class_weights.begin(), task_.class_weights.end()));
    }
    try {
      for (auto& [tensor_name, tensor] : net_->StateTensors()) {
        if (tensor.scalar_type() != torch::kFloat || !tensor.is_contiguous()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model '", name_, "': tensor '", tensor_name,
              "' is not a contiguous float32 tensor; only float32 models are supported"));
        }
        layout_.tensors.push_back({tensor_name, tensor.sizes().vec()});
        state_.push_back(tensor);
      }
      std::vector<int64_t> shape = {2};
      shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
      torch::NoGradGuard no_grad;
      net_->SetTraining(false);
      const torch::Tensor out = net_->Forward(torch::zeros(shape));
      if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != num_classes_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model '", name_, "' maps input [N,", absl::StrJoin(input_shape_, ","),
            "] to shape [", absl::StrJoin(out.sizes().vec(), ","), "]; task ",
            TaskTypeName(task_.type), " expects [N,", num_classes_, "] ", OutputKind()));
      }
      has_loss_ = net_->HasLoss();
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("model '", name_, "' cannot take input [N,",
                                                     absl::StrJoin(input_shape_, ","),
                                                     "]: ", Brief(e)));
    }
    if (layout_.tensors.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("model '", name_, "' has no parameters"));
    }
    return absl::OkStatus();
  }

  const char* OutputKind() const {
    switch (task_.type) {
      case TaskType::kClassification: return "class scores";
      case TaskType::kRegression: return "predicted targets";
      case TaskType::kSurvival: return "log risks";
      case TaskType::kMultilabel: return "label scores";
    }
    return "outputs";
  }

  absl::Status CheckData(const Dataset& data) const {
    if (task_.type != TaskType::kClassification) {
      absl::StatusOr<int64_t> width = OutputWidth(task_, data);
      if (!width.ok()) return width.status();
      if (data.sample_shape != input_shape_ || *width != num_classes_ ||
          static_cast<int64_t>(data.targets.size()) != data.num_samples() * data.target_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "data with samples [", absl::StrJoin(data.sample_shape, ","), "] and targets [",
            absl::StrJoin(data.target_shape, ","), "] does not fit model '", name_,
            "' built for [", absl::StrJoin(input_shape_, ","), "] and ", num_classes_,
            " outputs (task ", TaskTypeName(task_.type), ")"));
      }
      return absl::OkStatus();
    }
    if (data.sample_shape != input_shape_ || data.num_classes != num_classes_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data with samples [", absl::StrJoin(data.sample_shape, ","), "] and ",
          data.num_classes, " classes does not fit model '", name_, "' built for [",
          absl::StrJoin(input_shape_, ","), "] and ", num_classes_, " classes"));
    }
    return absl::OkStatus();
  }

  static std::vector<int64_t> AllOrSome(const Dataset& data, std::span<const int64_t> indices) {
    if (!indices.empty()) return {indices.begin(), indices.end()};
    std::vector<int64_t> all(data.num_samples());
    for (int64_t i = 0; i < data.num_samples(); ++i) all[i] = i;
    return all;
  }

  TrainStats TrainLoop(const Dataset& data, std::vector<int64_t>& order,
                       const TrainOptions& options, uint64_t seed) {
    net_->SetTraining(true);
    std::vector<torch::Tensor> params = net_->TrainableParameters();
    torch::optim::SGD optimiser(params, torch::optim::SGDOptions(options.learning_rate)
                                            .momentum(options.momentum)
                                            .weight_decay(options.weight_decay));
    std::vector<torch::Tensor> start;
    if (options.proximal_mu > 0) {
      for (const torch::Tensor& p : params) start.push_back(p.detach().clone());
    }
    std::mt19937_64 rng(seed);
    TrainStats stats;
    double loss_sum = 0;
    torch::Tensor inputs, labels, targets;
    for (int epoch = 0; epoch < options.local_epochs; ++epoch) {
      Shuffle(order, rng);
      for (size_t begin = 0; begin < order.size(); begin += options.batch_size) {
        const size_t end = std::min(order.size(), begin + options.batch_size);
        GatherBatch(data, order, begin, end, input_shape_, &inputs, &labels, &targets);
        optimiser.zero_grad();
        const torch::Tensor output = net_->Forward(inputs);
        torch::Tensor loss =
            has_loss_ ? net_->Loss(output, LossTarget(task_.type, labels, targets))
                      : internal::BatchLoss(task_, class_weights_, output, labels, targets);
        loss_sum += loss.item<double>() * static_cast<double>(end - begin);
        if (options.proximal_mu > 0) {
          torch::Tensor proximal = torch::zeros({});
          for (size_t i = 0; i < params.size(); ++i) {
            proximal = proximal + (params[i] - start[i]).pow(2).sum();
          }
          loss = loss + proximal * (options.proximal_mu / 2);
        }
        loss.backward();
        optimiser.step();
        stats.samples += static_cast<int64_t>(end - begin);
        ++stats.steps;
      }
    }
    stats.mean_loss = stats.samples ? loss_sum / stats.samples : 0;
    return stats;
  }

  EvalStats EvalLoop(const Dataset& data, const std::vector<int64_t>& rows, int batch_size) {
    torch::NoGradGuard no_grad;
    net_->SetTraining(false);
    EvalStats stats;
    stats.task = task_.type;
    const bool classification = task_.type == TaskType::kClassification;
    if (classification) {
      stats.num_classes = num_classes_;
      stats.confusion.assign(num_classes_ * num_classes_, 0);
    } else {
      stats.output_width = num_classes_;
      stats.target_width = data.target_size();
      stats.cox_loss = task_.type == TaskType::kSurvival && !has_loss_;
    }
    torch::Tensor inputs, labels, targets;
    for (size_t begin = 0; begin < rows.size(); begin += batch_size) {
      const size_t end = std::min(rows.size(), begin + batch_size);
      GatherBatch(data, rows, begin, end, input_shape_, &inputs, &labels, &targets);
      const torch::Tensor output = net_->Forward(inputs);
      const auto count = static_cast<int64_t>(end - begin);
      stats.loss_sum +=
          has_loss_ ? net_->Loss(output, LossTarget(task_.type, labels, targets)).item<double>() *
                          static_cast<double>(count)
                    : internal::EvaluationLossSum(task_, output, labels, targets);
      stats.samples += count;
      if (classification) {
        AddClassification(output, labels, &stats);
      } else {
        AddPredictions(data, output, targets, &stats);
      }
    }
    return stats;
  }

  void AddClassification(const torch::Tensor& logits, const torch::Tensor& labels,
                         EvalStats* stats) const {
    const torch::Tensor predicted = logits.argmax(1).contiguous();
    stats->correct += predicted.eq(labels).sum().item<int64_t>();
    const int64_t* p = predicted.data_ptr<int64_t>();
    const int64_t* y = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < labels.numel(); ++i) {
      if (y[i] >= 0 && y[i] < num_classes_) stats->confusion[y[i] * num_classes_ + p[i]] += 1;
    }
    if (num_classes_ == 2) {
      const torch::Tensor prob = torch::softmax(logits, 1).select(1, 1).contiguous();
      const float* score = prob.data_ptr<float>();
      stats->positive_scores.insert(stats->positive_scores.end(), score, score + prob.numel());
      stats->labels.insert(stats->labels.end(), y, y + labels.numel());
    }
  }

  // Predictions and targets in the data's own units.
  void AddPredictions(const Dataset& data, const torch::Tensor& output,
                      const torch::Tensor& targets, EvalStats* stats) const {
    torch::Tensor shown = output.to(torch::kFloat);
    torch::Tensor truth = targets.reshape({targets.size(0), -1}).to(torch::kFloat);
    if (task_.type == TaskType::kMultilabel) shown = torch::sigmoid(shown);
    if (task_.type == TaskType::kRegression && !data.target_mean.empty()) {
      const torch::Tensor mean =
          torch::tensor(std::vector<double>(data.target_mean), torch::kDouble).to(torch::kFloat);
      const torch::Tensor scale =
          torch::tensor(std::vector<double>(data.target_scale), torch::kDouble).to(torch::kFloat);
      shown = shown * scale + mean;
      truth = truth * scale + mean;
    }
    shown = shown.contiguous();
    truth = truth.contiguous();
    const float* p = shown.data_ptr<float>();
    const float* t = truth.data_ptr<float>();
    stats->predictions.insert(stats->predictions.end(), p, p + shown.numel());
    stats->targets.insert(stats->targets.end(), t, t + truth.numel());
  }

  std::string name_;
  std::unique_ptr<Net> net_;
  std::vector<int64_t> input_shape_;
  int64_t num_classes_;  // the output width
  TaskOptions task_;
  torch::Tensor class_weights_;  // undefined without class weights
  bool has_loss_ = false;        // the scripted module has a `loss` method
  ParameterLayout layout_;
  std::vector<torch::Tensor> state_;  // aliases the net's tensors, layout order
};


// glibc serves blocks above its mmap threshold with fresh mmaps and returns
// free memory above its trim threshold at the top of the heap to the kernel.
// Both adapt at run time, and depending on the heap's layout a training
// step's multi-megabyte temporaries (activations, the CNN's 6.4 MB fc1
// gradient) were given back and page-faulted in again on every step: 309k
// instead of 31k page faults and 25% fewer CNN samples/s in the same binary
// (docs/performance.md). Fixed thresholds keep that memory in the heap for
// the next step. Once per process, and not if the user tuned malloc through
// the environment.
void KeepTrainingMemoryInHeap() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    if (MallocTunedByEnvironment()) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
  });
#endif
}

}  // namespace

namespace internal {
std::unique_ptr<Net> LoadScriptedNet(const std::string& path) {
  return std::make_unique<ScriptedNet>(torch::jit::load(path));
}
}  // namespace internal

std::vector<std::string> BuiltinModelNames() { return internal::BuiltinNetNames(); }

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelSpec& spec, uint64_t seed,
                                                   const TaskOptions& task) {
  KeepTrainingMemoryInHeap();
  std::unique_ptr<Net> net;
  try {
    if (internal::LooksLikeFile(spec.name_or_path)) {
      SV_RETURN_IF_ERROR(CheckModelName(spec.name_or_path));
      net = internal::LoadScriptedNet(spec.name_or_path);
    } else {
      torch::manual_seed(seed);
      net = internal::MakeBuiltinNet(spec.name_or_path, spec.input_shape, spec.num_classes);
      if (net == nullptr) return CheckModelName(spec.name_or_path);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create model '", spec.name_or_path, "': ", Brief(e)));
  }
  SV_ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model,
                      TorchModel::Create(spec.name_or_path, std::move(net), spec.input_shape,
                                         spec.num_classes, task));
  return std::unique_ptr<Model>(std::move(model));
}

void SetTorchThreads(int threads) { torch::set_num_threads(std::max(1, threads)); }

}  // namespace samverka::models
