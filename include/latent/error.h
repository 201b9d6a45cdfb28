// latent::Error: the one exception type of the library, and the check macros that throw it.
//
// Every failure the library can detect (a shape, dtype or device mismatch, a malformed file,
// a failed CUDA call) becomes a latent::Error whose message names what failed, the values
// involved, and the source file and line. Library code never calls exit() or abort().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace latent {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace detail
}  // namespace latent

// LATENT_CHECK(condition, parts...): throws latent::Error with the parts streamed together,
// followed by the file and line, when the condition is false.
#define LATENT_CHECK(condition, ...)                                                   \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      ::latent::detail::throw_error(__FILE__, __LINE__,                                \
                                    ::latent::detail::concat(__VA_ARGS__));            \
    }                                                                                  \
  } while (0)

// LATENT_FAIL(parts...): throws unconditionally.
#define LATENT_FAIL(...) \
  ::latent::detail::throw_error(__FILE__, __LINE__, ::latent::detail::concat(__VA_ARGS__))
