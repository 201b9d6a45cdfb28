// Atomic file writing (temporary file, fsync, rename) and plain file reading.
//
// The recipe that makes a write atomic on POSIX file systems:
//   1. create a new file with a unique name in the target's directory (O_CREAT | O_EXCL);
//   2. write everything into it and fsync it, so the data is on disk before its name is;
//   3. rename() it over the target: rename within one file system replaces the directory
//      entry in one step, so readers see either the old file or the complete new one;
//   4. fsync the directory, so the rename itself survives a power cut.
// If anything fails before step 3 the temporary file is unlinked and the target untouched.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/io_detail.h"
#include "latent/autograd.h"
#include "latent/io.h"

namespace latent {

namespace io_detail {

std::string printable(const std::string& bytes) {
  std::size_t end = bytes.size();
  while (end > 0 && (bytes[end - 1] == ' ' || bytes[end - 1] == '\n' || bytes[end - 1] == '\r' ||
                     bytes[end - 1] == '\t'))
    --end;
  std::string out;
  for (std::size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string errno_message(int error_number) {
  char buffer[256];
  // GNU strerror_r may return a static string instead of filling the buffer.
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(error_number, buffer, sizeof buffer);
#else
  if (strerror_r(error_number, buffer, sizeof buffer) != 0) return "error " + std::to_string(error_number);
  return buffer;
#endif
}

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    LATENT_FAIL("cannot open '", path_, "' for reading: ", errno_message(e));
  }
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    const int e = errno;
    ::close(fd_);
    LATENT_FAIL("cannot stat '", path_, "': ", errno_message(e));
  }
  if (S_ISDIR(info.st_mode)) {
    ::close(fd_);
    LATENT_FAIL("cannot read '", path_, "': it is a directory");
  }
  size_ = static_cast<std::uint64_t>(info.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(std::uint64_t offset, void* destination, std::size_t count,
                        const char* what) const {
  LATENT_CHECK(offset <= size_ && count <= size_ - offset, "'", path_, "' is truncated: ",
               what, " needs bytes [", offset, ", ", offset + count, ") but the file has ",
               size_, " bytes");
  auto* out = static_cast<char*>(destination);
  std::size_t done = 0;
  while (done < count) {
    const ssize_t n = ::pread(fd_, out + done, count - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      LATENT_FAIL("error reading '", path_, "' (", what, "): ", errno_message(e));
    }
    LATENT_CHECK(n > 0, "'", path_, "' is truncated: ", what, " ends at byte ", offset + done,
                 " of ", offset + count);
    done += static_cast<std::size_t>(n);
  }
}

Tensor host_contiguous(const Tensor& tensor) {
  LATENT_CHECK(tensor.defined(), "cannot save an undefined tensor");
  NoGradGuard no_grad;
  return tensor.detach().to(Device::cpu()).contiguous();
}

}  // namespace io_detail

using io_detail::errno_message;

namespace {

constexpr std::size_t kWriteBufferBytes = std::size_t{1} << 20;

// Writes all of [data, data + size) to fd, retrying partial writes and EINTR.
// Returns 0 on success or the errno of the failure.
int write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

std::string directory_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  LATENT_CHECK(!path_.empty(), "cannot write a file: the path is empty");
  const std::filesystem::path target(path_);
  LATENT_CHECK(target.has_filename(), "cannot write '", path_, "': the path names a directory");

  // A unique, hidden name beside the target: ".<name>.tmp.<pid>.<n>".
  static std::atomic<std::uint64_t> counter{0};
  const std::string base = target.filename().string();
  const std::string dir = target.parent_path().string();
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string name = "." + base + ".tmp." + std::to_string(::getpid()) + "." +
                             std::to_string(counter.fetch_add(1));
    temp_path_ = dir.empty() ? name : dir + "/" + name;
    // Mode 0666 filtered by the umask: the permissions an ordinary new file would get.
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0 || errno != EEXIST) break;
  }
  if (fd_ < 0) {
    const int e = errno;
    LATENT_FAIL("cannot write '", path_, "': creating a temporary file in '", directory_of(path_),
                "' failed: ", errno_message(e));
  }
  // Replacing an existing file keeps its permission bits.
  struct stat existing {};
  if (::stat(path_.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
    (void)::fchmod(fd_, existing.st_mode & 07777);
  }
  buffer_.reserve(kWriteBufferBytes);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void AtomicFileWriter::flush_buffer() {
  if (buffer_.empty()) return;
  const int e = write_all(fd_, buffer_.data(), buffer_.size());
  buffer_.clear();
  if (e != 0) {
    discard();
    LATENT_FAIL("cannot write '", path_, "': ", errno_message(e));
  }
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
  LATENT_CHECK(fd_ >= 0 && !committed_, "cannot write '", path_,
               "': the file was already committed or abandoned after an error");
  if (size == 0) return;
  const char* bytes = static_cast<const char*>(data);
  bytes_written_ += size;
  if (buffer_.size() + size <= kWriteBufferBytes) {
    buffer_.append(bytes, size);
    return;
  }
  flush_buffer();
  if (size >= kWriteBufferBytes) {  // large pieces go straight to the file
    const int e = write_all(fd_, bytes, size);
    if (e != 0) {
      discard();
      LATENT_FAIL("cannot write '", path_, "': ", errno_message(e));
    }
  } else {
    buffer_.append(bytes, size);
  }
}

void AtomicFileWriter::commit() {
  LATENT_CHECK(fd_ >= 0 && !committed_, "cannot commit '", path_,
               "': the file was already committed or abandoned after an error");
  flush_buffer();
  if (::fsync(fd_) != 0) {
    const int e = errno;
    discard();
    LATENT_FAIL("cannot write '", path_, "': fsync failed: ", errno_message(e));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int e = errno;
    discard();
    LATENT_FAIL("cannot write '", path_, "': close failed: ", errno_message(e));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    discard();
    LATENT_FAIL("cannot write '", path_, "': renaming the temporary file over it failed: ",
                errno_message(e));
  }
  temp_path_.clear();
  committed_ = true;
  // Make the rename durable. Some file systems refuse fsync on a directory; the file is
  // already complete and in place by now, so that is not worth failing the save for.
  const int dir_fd = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

std::string read_file(const std::string& path) {
  const io_detail::InputFile file(path);
  LATENT_CHECK(file.size() <= static_cast<std::uint64_t>(SIZE_MAX / 2), "cannot read '", path,
               "': file of ", file.size(), " bytes is too large");
  std::string bytes(static_cast<std::size_t>(file.size()), '\0');
  file.read_at(0, bytes.data(), bytes.size(), "the file");
  return bytes;
}

}  // namespace latent
