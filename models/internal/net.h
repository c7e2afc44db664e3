// models/internal/net.h
#pragma once

// The only header of models/ that includes LibTorch. Included by the two
// translation units that talk to torch, never by other folders.
#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace samverka::models::internal {

// A network that the trainer drives: a C++-frontend built-in or a loaded
// TorchScript module behind one interface. Methods may throw c10::Error; the
// Model wrapper in torch_model.cc catches it. Not thread-safe.
class Net {
 public:
  virtual ~Net() = default;
  virtual torch::Tensor Forward(const torch::Tensor& input) = 0;
  // Tensors the optimiser updates.
  virtual std::vector<torch::Tensor> TrainableParameters() = 0;
  // Named float32 state exchanged with the coordinator: parameters, then
  // float buffers (batch-norm statistics). Handles alias the net's storage.
  virtual std::vector<std::pair<std::string, torch::Tensor>> StateTensors() = 0;
  virtual void SetTraining(bool training) = 0;
  // Writes a TorchScript archive.
  virtual void Save(const std::string& path) = 0;
  // A new net with the same architecture (state is copied by the caller).
  virtual std::unique_ptr<Net> CloneArchitecture() = 0;
  // True if the net brings its own loss (a scripted `loss` method).
  virtual bool HasLoss() { return false; }
  // The net's own loss of `output` against `target`, a scalar (batch mean).
  virtual torch::Tensor Loss(const torch::Tensor& output, const torch::Tensor& target) {
    (void)output;
    (void)target;
    throw std::logic_error("this net has no loss method");
  }
};

// nullptr for an unknown name; throws std::invalid_argument when the
// architecture cannot take `input_shape` or `num_outputs` < 1.
std::unique_ptr<Net> MakeBuiltinNet(const std::string& name,
                                    const std::vector<int64_t>& input_shape,
                                    int64_t num_outputs);
std::vector<std::string> BuiltinNetNames();

// True if `name` is a path rather than a built-in name (has a '/' or ends
// in .pt / .pth).
bool LooksLikeFile(const std::string& name);

// Loads a TorchScript archive; throws c10::Error on failure.
std::unique_ptr<Net> LoadScriptedNet(const std::string& path);

}  // namespace samverka::models::internal
