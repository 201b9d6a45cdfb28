// Fuzzes load_npy (src/io/npy.cpp): the preamble, the header dict parser, the shape and
// length checks, the '<i8' narrowing, the '|u1' widening and the fortran_order transpose.
#include "fuzz_util.h"
#include "latent/io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = latent::fuzz::input_file().write(data, size);
  latent::fuzz::expect_only_latent_errors("fuzz_npy", [&] {
    const latent::Tensor t = latent::load_npy(path);
    latent::fuzz::check_loaded("fuzz_npy", t);
  });
  return 0;
}
