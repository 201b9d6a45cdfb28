// Helpers shared by the file readers and writers in src/io (not part of the public API).
//
// InputFile: a read-only file opened for random access, used by the .npy and safetensors
// readers so that tensor data is read straight into tensor storage (no whole-file copy).
// Every failure throws latent::Error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "latent/tensor.h"

namespace latent::io_detail {

class InputFile {
 public:
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }

  // Reads exactly `count` bytes starting at `offset`; a short read means the file is
  // truncated and throws an error that says which part (`what`) was cut off.
  void read_at(std::uint64_t offset, void* destination, std::size_t count,
               const char* what) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// Bytes from a file, fit for an error message on one line: trailing whitespace dropped,
// other bytes outside printable ASCII written as \xNN.
std::string printable(const std::string& bytes);

// strerror(error_number), thread-safe.
std::string errno_message(int error_number);

// A contiguous cpu tensor with the same values as `tensor`, detached from autograd: what a
// writer serializes. Returns `tensor` itself when it already is one.
Tensor host_contiguous(const Tensor& tensor);

}  // namespace latent::io_detail
