// Shared by the fuzz targets: the fuzz input as a file, and the rule that only latent::Error
// may escape a reader.
//
// The readers take paths, so each input is written to one in-memory file (memfd_create, named
// through /proc/self/fd) that is rewritten for every input: no disk traffic, nothing left
// behind. Where memfd or /proc is unavailable a temporary file under $TMPDIR is used instead.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "latent/error.h"

namespace latent::fuzz {

class InputFile {
 public:
  InputFile() {
    fd_ = ::memfd_create("latent-fuzz", MFD_CLOEXEC);
    if (fd_ >= 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
      if (::access(path_.c_str(), R_OK) == 0) return;
      ::close(fd_);
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/latent-fuzz-XXXXXX";
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0) {
      std::perror("latent fuzz: cannot create the input file");
      std::abort();
    }
    path_ = pattern;
    temporary_ = true;
  }
  ~InputFile() {
    ::close(fd_);
    if (temporary_) ::unlink(path_.c_str());
  }

  // Replaces the file's content with `data` and returns its path.
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) fail("ftruncate");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) fail("pwrite");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  [[noreturn]] static void fail(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_ = -1;
  std::string path_;
  bool temporary_ = false;
};

// The one input file of this process (libFuzzer calls the target from one thread).
inline InputFile& input_file() {
  static InputFile* file = new InputFile;  // never destroyed: libFuzzer exits via exit()
  return *file;
}

// Runs `body`; a latent::Error is the expected answer to a malformed input, anything else
// thrown is a finding: it is reported and the process aborts, which libFuzzer records as a
// crash with the input saved.
template <class Body>
void expect_only_latent_errors(const char* target, Body&& body) {
  try {
    body();
  } catch (const latent::Error&) {
    // a clean rejection
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\n%s: a %s escaped (only latent::Error may): %s\n", target,
                 typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "\n%s: a non-std exception escaped (only latent::Error may)\n", target);
    std::abort();
  }
}

// A finding that is not an exception: a broken invariant of an accepted input.
[[noreturn]] inline void invariant_failed(const char* target, const std::string& what) {
  std::fprintf(stderr, "\n%s: invariant broken: %s\n", target, what.c_str());
  std::abort();
}

}  // namespace latent::fuzz

#include "latent/tensor.h"

namespace latent::fuzz {

// What every reader promises about a tensor it returns (include/latent/io.h): defined,
// contiguous, on the cpu, a shape whose element count fits in int64, and storage that holds
// every element. Each byte is read, so ASan sees a tensor that claims more than it has.
inline void check_loaded(const char* target, const Tensor& t) {
  if (!t.defined()) invariant_failed(target, "an undefined tensor was returned");
  if (!t.device().is_cpu()) invariant_failed(target, "a tensor not on the cpu was returned");
  if (!t.is_contiguous()) invariant_failed(target, "a non-contiguous tensor was returned");
  std::int64_t numel = 1;
  for (const std::int64_t d : t.shape()) {
    if (d < 0) invariant_failed(target, "negative extent in shape " + shape_str(t.shape()));
    if (__builtin_mul_overflow(numel, d, &numel))
      invariant_failed(target, "the element count of shape " + shape_str(t.shape()) +
                                   " overflows int64");
  }
  if (t.numel() != numel)
    invariant_failed(target, "numel() " + std::to_string(t.numel()) + " for shape " +
                                 shape_str(t.shape()));
  if (numel == 0) return;
  const std::uint64_t bytes = static_cast<std::uint64_t>(numel) * dtype_size(t.dtype());
  const std::uint64_t end = static_cast<std::uint64_t>(t.offset()) * dtype_size(t.dtype()) + bytes;
  if (!t.storage() || t.storage()->nbytes() < end)
    invariant_failed(target, "storage of " +
                                 std::to_string(t.storage() ? t.storage()->nbytes() : 0) +
                                 " bytes for shape " + shape_str(t.shape()));
  const auto* p = static_cast<const volatile unsigned char*>(t.data_ptr());
  unsigned sum = 0;
  for (std::uint64_t i = 0; i < bytes; ++i) sum += p[i];
  (void)sum;
}

// Every value of a float tensor lies in [lo, hi] (readers that scale bytes promise this).
inline void check_range(const char* target, const Tensor& t, float lo, float hi) {
  const float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!(p[i] >= lo && p[i] <= hi))
      invariant_failed(target, "value " + std::to_string(p[i]) + " at flat index " +
                                   std::to_string(i) + " is outside [" + std::to_string(lo) +
                                   ", " + std::to_string(hi) + "]");
}

}  // namespace latent::fuzz
