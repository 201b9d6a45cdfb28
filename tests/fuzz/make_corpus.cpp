// Writes the seed corpus of the fuzz targets: small valid files, made by latent's own writers
// where latent writes that kind of file, and by hand (bytes in the documented format) for the
// variants latent reads but never writes ('<i8', '|u1', fortran_order, .npy 2.0; F16, BF16
// and I64 safetensors).
//
//   fuzz_make_corpus DIR    writes DIR/{npy,safetensors,png,idx,config}/<name>
//
// tools/fuzz --make-corpus regenerates tests/fuzz/corpus/ with it.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "latent/data.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "tools/train/train.h"

namespace {

using latent::DType;
using latent::Tensor;
namespace fs = std::filesystem;

// A .npy file by hand: version `major`, dict `dict`, then `payload`.
std::string npy_bytes(int major, const std::string& dict, const std::string& payload) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (std::size_t i = 0; i < prefix - 8; ++i)
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  return out + header + payload;
}

// A safetensors file by hand: header JSON (padded to 8 bytes) and data.
std::string safetensors_bytes(std::string header, const std::string& data) {
  while (header.size() % 8 != 0) header.push_back(' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  return out + header + data;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

Tensor ramp(const latent::Shape& shape, DType dtype = DType::f32) {
  const std::int64_t n = latent::shape_numel(shape);
  return latent::arange(0.0, static_cast<double>(n), 1.0, dtype).reshape(shape);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* target : {"npy", "safetensors", "png", "idx", "config"})
    fs::create_directories(root / target);
  auto put = [&](const char* target, const char* name, const std::string& bytes) {
    latent::write_file_atomic((root / target / name).string(), bytes);
  };

  // ---- .npy
  const fs::path npy = root / "npy";
  latent::save_npy((npy / "f32_2x3.npy").string(), ramp({2, 3}));
  latent::save_npy((npy / "f64_4.npy").string(), ramp({4}, DType::f64));
  latent::save_npy((npy / "i32_scalar.npy").string(), latent::full({}, 7.0, DType::i32));
  latent::save_npy((npy / "f32_empty_0x3.npy").string(), latent::empty({0, 3}));
  latent::save_npy((npy / "i32_2x1x2.npy").string(), ramp({2, 1, 2}, DType::i32));
  put("npy", "i8_3.npy",
      npy_bytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                raw<std::int64_t>({-1, 0, 2147483647})));
  put("npy", "u1_2x2.npy",
      npy_bytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                std::string("\x00\x01\x7f\xff", 4)));
  put("npy", "f4_fortran_2x3.npy",
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                raw<float>({0, 3, 1, 4, 2, 5})));
  put("npy", "f8_v2_2.npy",
      npy_bytes(2, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2L,), }",
                raw<double>({0.5, -2.0})));

  // ---- safetensors
  const fs::path st = root / "safetensors";
  latent::save_safetensors((st / "two_tensors.safetensors").string(),
                           {{"weight", ramp({2, 3})}, {"bias", ramp({3}, DType::f64)}},
                           {{"format", "pt"}, {"step", "5"}});
  latent::save_safetensors((st / "i32_and_empty.safetensors").string(),
                           {{"index", ramp({2, 2}, DType::i32)}, {"none", latent::empty({0})}});
  latent::save_safetensors((st / "scalar.safetensors").string(),
                           {{"s", latent::full({}, 1.5)}});
  put("safetensors", "f16_bf16_i64.safetensors",
      safetensors_bytes(
          R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
          R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
          R"("l":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})",
          raw<std::uint16_t>({0x3c00, 0x0001}) + raw<std::uint16_t>({0x3f80, 0xc000}) +
              raw<std::int64_t>({-3})));

  // ---- PNG
  const fs::path png = root / "png";
  latent::save_png((png / "gray_3x4.png").string(), ramp({3, 4}) / 12.0);
  latent::save_png((png / "rgb_2x2.png").string(), ramp({3, 2, 2}) / 12.0);
  latent::save_png((png / "rgba_1x3.png").string(), ramp({4, 1, 3}) / 12.0);

  // ---- IDX
  const fs::path idx = root / "idx";
  latent::save_idx_images((idx / "images-2x3x3-idx3-ubyte").string(), ramp({2, 3, 3}) / 18.0);
  latent::save_idx_images((idx / "images-1x2x2-idx3-ubyte.gz").string(), ramp({1, 1, 2, 2}) / 4.0);
  latent::save_idx_labels((idx / "labels-4-idx1-ubyte").string(), ramp({4}, DType::i32));
  latent::save_idx_labels((idx / "labels-3-idx1-ubyte.gz").string(), ramp({3}, DType::i32));

  // ---- checkpoint config
  latent::train::Config config;
  put("config", "default.json", latent::train::config_to_json(config));
  config.model = "vae";
  config.latent = "flat";
  config.beta = 4.0;
  config.kl_warmup = 100;
  put("config", "vae_flat.json", latent::train::config_to_json(config));
  config = {};
  config.model = "vqvae";
  config.ema = true;
  config.dead_code_threshold = 0.5;
  config.codebook_size = 64;
  config.steps = 10;
  put("config", "vqvae_ema.json", latent::train::config_to_json(config));
  config = {};
  config.model = "fsq";
  config.levels = {7, 5, 5};
  config.fsq_symmetric = true;
  config.seed = 18446744073709551615ull;
  put("config", "fsq.json", latent::train::config_to_json(config));

  // Every seed must be accepted by its reader: a rejected seed would only teach the fuzzer
  // the error path.
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    const std::string target = entry.path().parent_path().filename().string();
    const std::string name = entry.path().filename().string();
    if (target == "npy") latent::load_npy(path);
    else if (target == "safetensors") latent::load_safetensors(path);
    else if (target == "png") latent::load_png(path);
    else if (target == "idx" && name.starts_with("images")) latent::load_idx_images(path);
    else if (target == "idx") latent::load_idx_labels(path);
    else if (target == "config") latent::train::config_from_json(latent::read_file(path));
  }
  return 0;
}
