// Tests for include/latent/io.h: atomic writes, .npy, safetensors, PNG and image_grid.
//
// Every reader is also fed malformed files, each of which must give a latent::Error whose
// message names the file (and the tensor, where there is one).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "latent/fsq.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "test_util.h"

namespace latent {
namespace {

namespace fs = std::filesystem;

class IoTempDir : public test::TempDirTest {
 protected:
  IoTempDir() : TempDirTest("latent_io_test_") {}

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// Bitwise comparison: shape, dtype and every byte of the data (so NaN payloads count).
void expect_bit_exact(const Tensor& expected, const Tensor& actual) {
  ASSERT_EQ(expected.shape(), actual.shape());
  ASSERT_EQ(expected.dtype(), actual.dtype());
  const Tensor a = expected.contiguous(), b = actual.contiguous();
  const std::size_t bytes = static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype());
  EXPECT_EQ(0, bytes == 0 ? 0 : std::memcmp(a.data_ptr(), b.data_ptr(), bytes));
}

std::string le_bytes(std::uint64_t value, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return s;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// =================================================================== atomic files
using IoAtomicFile = IoTempDir;

TEST_F(IoAtomicFile, WritesAndReplacesWithoutLeavingTemporaries) {
  const std::string target = path("out.bin");
  write_file_atomic(target, "first");
  EXPECT_EQ(read_file(target), "first");
  write_file_atomic(target, std::string("second\0with nul", 15));
  EXPECT_EQ(read_file(target), std::string("second\0with nul", 15));
  write_file_atomic(target, "");
  EXPECT_EQ(read_file(target), "");
  EXPECT_EQ(entries(), std::vector<std::string>{"out.bin"});
}

TEST_F(IoAtomicFile, StreamingWriterLargeAndSmallPieces) {
  const std::string target = path("big.bin");
  std::string expected;
  {
    AtomicFileWriter writer(target);
    for (int i = 0; i < 50; ++i) {
      const std::string piece(static_cast<std::size_t>(i) * 97 + 1, static_cast<char>('a' + i % 26));
      writer.write(piece);
      expected += piece;
    }
    const std::string large(3 << 20, 'z');  // bigger than the internal buffer
    writer.write(large);
    expected += large;
    EXPECT_FALSE(fs::exists(target));  // nothing visible before commit
    writer.commit();
    EXPECT_EQ(writer.bytes_written(), expected.size());
  }
  EXPECT_EQ(read_file(target), expected);
  EXPECT_EQ(entries(), std::vector<std::string>{"big.bin"});
}

TEST_F(IoAtomicFile, AbandonedWriteLeavesTargetUntouched) {
  const std::string target = path("keep.txt");
  write_file_atomic(target, "precious");
  {
    AtomicFileWriter writer(target);
    writer.write("half-writ");
    // destroyed without commit, e.g. by an exception
  }
  EXPECT_EQ(read_file(target), "precious");
  EXPECT_EQ(entries(), std::vector<std::string>{"keep.txt"});
}

TEST_F(IoAtomicFile, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string target = path("no/such/dir/file.bin");
  EXPECT_LATENT_ERROR(write_file_atomic(target, "x"), target, "No such file");
  EXPECT_EQ(entries(), std::vector<std::string>{});
}

TEST_F(IoAtomicFile, TargetThatIsADirectoryFailsAndCleansUp) {
  fs::create_directories(path("occupied"));
  fs::create_directories(path("occupied/child"));  // a non-empty directory cannot be replaced
  EXPECT_LATENT_ERROR(write_file_atomic(path("occupied"), "x"), path("occupied"));
  EXPECT_EQ(entries(), std::vector<std::string>{"occupied"});
}

TEST_F(IoAtomicFile, KeepsPermissionsOfReplacedFile) {
  const std::string target = path("private.bin");
  write_file_atomic(target, "a");
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  write_file_atomic(target, "b");
  struct stat info {};
  ASSERT_EQ(::stat(target.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(IoAtomicFile, CommitTwiceAndReadMissingAreErrors) {
  AtomicFileWriter writer(path("once"));
  writer.commit();
  EXPECT_LATENT_ERROR(writer.commit(), path("once"));
  EXPECT_LATENT_ERROR(read_file(path("absent")), path("absent"), "No such file");
  EXPECT_LATENT_ERROR(read_file(dir_.string()), dir_.string(), "directory");
}

// =================================================================== .npy
using Npy = IoTempDir;

Tensor random_tensor(const Shape& shape, DType dtype, std::uint64_t seed) {
  Generator gen(seed);
  if (dtype == DType::i32) {
    Tensor t = empty(shape, DType::i32);
    std::int32_t* p = t.data<std::int32_t>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      p[i] = static_cast<std::int32_t>(gen.next_u64());  // full range, negatives included
    return t;
  }
  return randn(shape, gen, dtype);
}

TEST_F(Npy, RoundTripEveryDtype) {
  for (const DType dtype : {DType::f32, DType::f64, DType::i32}) {
    const Tensor t = random_tensor({3, 4, 5}, dtype, 7);
    const std::string file = path(std::string("a_") + dtype_name(dtype) + ".npy");
    save_npy(file, t);
    expect_bit_exact(t, load_npy(file));
  }
}

TEST_F(Npy, RoundTripSpecialFloatValuesBitExact) {
  const float nan_payload = std::bit_cast<float>(0x7FC12345u);
  const std::vector<float> values = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(), nan_payload,
                                     std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::max()};
  const Tensor t = from_vector(values, {7});
  save_npy(path("special.npy"), t);
  expect_bit_exact(t, load_npy(path("special.npy")));
}

TEST_F(Npy, RoundTripZeroDimEmptyAndViews) {
  const Tensor scalar = scalar_tensor(3.25, DType::f64);
  save_npy(path("scalar.npy"), scalar);
  const Tensor back = load_npy(path("scalar.npy"));
  EXPECT_EQ(back.dim(), 0);
  expect_bit_exact(scalar, back);

  for (const Shape& shape : {Shape{0}, Shape{0, 3}, Shape{2, 0, 4}}) {
    const Tensor e = empty(shape, DType::i32);
    save_npy(path("empty.npy"), e);
    expect_bit_exact(e, load_npy(path("empty.npy")));
  }

  const Tensor base = random_tensor({4, 6}, DType::f32, 3);
  const Tensor view = base.t().narrow(0, 1, 3);  // non-contiguous [3, 4]
  ASSERT_FALSE(view.is_contiguous());
  save_npy(path("view.npy"), view);
  expect_bit_exact(view.contiguous(), load_npy(path("view.npy")));
}

TEST_F(Npy, HeaderMatchesNumpyLayout) {
  // np.save of np.arange(6, dtype='<f4').reshape(2, 3) writes exactly these bytes.
  save_npy(path("arange.npy"), arange(6).reshape({2, 3}));
  const std::string bytes = read_file(path("arange.npy"));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string expected = std::string("\x93NUMPY\x01\x00", 8) + le_bytes(118, 2) + dict;
  expected += std::string(128 - 1 - expected.size(), ' ') + "\n";
  expected += raw(std::vector<float>{0, 1, 2, 3, 4, 5});
  EXPECT_EQ(bytes, expected);

  save_npy(path("one.npy"), arange(3, DType::i32));
  EXPECT_NE(read_file(path("one.npy")).find("'shape': (3,), }"), std::string::npos);
  save_npy(path("zero.npy"), scalar_tensor(1.0));
  EXPECT_NE(read_file(path("zero.npy")).find("'shape': (), }"), std::string::npos);
}

// Builds a .npy file by hand.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  header += std::string((64 - (prefix + header.size() + 1) % 64) % 64, ' ') + "\n";
  return std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0' +
         le_bytes(header.size(), major == 1 ? 2 : 4) + header + data;
}

// A shape whose strides overflow int64 is an error whatever the order of its dimensions and
// whether one of them is 0 (the product of the sizes alone would be 0 and pass).
TEST_F(Npy, HugeShapesAreErrorsInAnyOrderWithOrWithoutAZero) {
  for (const char* shape : {"(0, 4611686018427387904, 4611686018427387904)",
                            "(0, 9223372036854775807, 4)", "(4611686018427387904, 4, 4)"}) {
    SCOPED_TRACE(shape);
    const std::string file = write_raw(
        "huge.npy", npy_bytes(std::string("{'descr': '<f4', 'fortran_order': False, 'shape': ") +
                                  shape + ", }",
                              ""));
    EXPECT_LATENT_ERROR(load_npy(file), file, "too large");
  }
  // Empty but addressable: loads, and is contiguous (nothing is walked or copied).
  const std::string empty = write_raw(
      "empty.npy",
      npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387905, 0, 4), }",
                ""));
  const Tensor t = load_npy(empty);
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(fsq_quantize(t, {8, 5, 5, 5}).codes.numel(), 0);
}

TEST_F(Npy, ReadsVersion2FortranOrderAndConvertedDtypes) {
  const std::string v2 = write_raw(
      "v2.npy", npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                          raw(std::vector<std::int32_t>{-5, 9}), 2));
  EXPECT_EQ(load_npy(v2).to_vector<std::int32_t>(), (std::vector<std::int32_t>{-5, 9}));

  // Fortran order: a = [[0, 1, 2], [3, 4, 5]] stored column by column.
  const std::string fortran = write_raw(
      "fortran.npy", npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                               raw(std::vector<double>{0, 3, 1, 4, 2, 5})));
  const Tensor f = load_npy(fortran);
  EXPECT_EQ(f.shape(), (Shape{2, 3}));
  EXPECT_TRUE(f.is_contiguous());
  EXPECT_EQ(f.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4, 5}));

  // Keys in another order, double quotes, Python 2 long suffixes, extra spaces.
  const std::string odd = write_raw(
      "odd.npy", npy_bytes("{ \"shape\" : (1L, 2L) , 'fortran_order':False,'descr':'<f4'}",
                           raw(std::vector<float>{1.5f, -2.5f})));
  EXPECT_EQ(load_npy(odd).to_vector<float>(), (std::vector<float>{1.5f, -2.5f}));

  const std::string i8 = write_raw(
      "i8.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                          raw(std::vector<std::int64_t>{-7, 0, 2147483647})));
  const Tensor narrowed = load_npy(i8);
  EXPECT_EQ(narrowed.dtype(), DType::i32);
  EXPECT_EQ(narrowed.to_vector<std::int32_t>(), (std::vector<std::int32_t>{-7, 0, 2147483647}));

  const std::string u1 = write_raw(
      "u1.npy", npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }",
                          std::string("\x00\x7f\xff", 3)));
  const Tensor bytes = load_npy(u1);
  EXPECT_EQ(bytes.dtype(), DType::f32);
  EXPECT_EQ(bytes.shape(), (Shape{1, 3}));
  EXPECT_EQ(bytes.to_vector<float>(), (std::vector<float>{0.0f, 127.0f, 255.0f}));
}

TEST_F(Npy, MalformedFilesAreErrorsNamingTheFile) {
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two_floats = raw(std::vector<float>{1, 2});
  struct Case {
    const char* name;
    std::string bytes;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {"short.npy", "\x93NUM", "bytes long"},
      {"magic.npy", "PK\x03\x04 this is a zip, not an array", "magic"},
      {"version.npy", std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '),
       "version 9.0"},
      {"header_len.npy", std::string("\x93NUMPY\x01\x00\xff\x7f", 10) + "{}", "truncated"},
      {"truncated.npy", npy_bytes(good_dict, two_floats.substr(0, 6)), "truncated"},
      {"trailing.npy", npy_bytes(good_dict, two_floats + "xx"), "after the array data"},
      {"dtype.npy",
       npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", two_floats),
       "unsupported dtype '<c8'"},
      {"bigendian.npy",
       npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two_floats),
       "big-endian"},
      {"garbage.npy", npy_bytes("this is not a dict", two_floats), "cannot parse the header"},
      {"nokey.npy", npy_bytes("{'descr': '<f4', 'shape': (2,), }", two_floats),
       "'fortran_order' is missing"},
      {"badshape.npy",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", two_floats),
       "non-negative integer"},
      {"structured.npy",
       npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                 two_floats),
       "structured"},
      {"unterminated.npy", npy_bytes("{'descr': '<f4", two_floats), "unterminated"},
      {"huge.npy",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                 "'shape': (4294967296, 4294967296, 4294967296), }",
                 two_floats),
       "too large"},
      {"i8range.npy",
       npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                 raw(std::vector<std::int64_t>{std::int64_t{1} << 40})),
       "does not fit in int32"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = write_raw(c.name, c.bytes);
    EXPECT_LATENT_ERROR(load_npy(file), file, c.mentions);
  }
  EXPECT_LATENT_ERROR(load_npy(path("missing.npy")), path("missing.npy"));
}

TEST_F(Npy, SaveErrorsNameThePath) {
  EXPECT_LATENT_ERROR(save_npy(path("nodir/x.npy"), arange(3)), path("nodir/x.npy"));
  EXPECT_LATENT_ERROR(save_npy(path("undef.npy"), Tensor()), "undefined");
}

// =================================================================== safetensors
using Safetensors = IoTempDir;

// A safetensors file from a hand-written header and data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le_bytes(header.size(), 8) + header + data;
}

TEST_F(Safetensors, RoundTripBitExactWithMetadataAndOrder) {
  const Tensor weight = random_tensor({8, 3, 3, 3}, DType::f32, 1);
  const Tensor table = random_tensor({5, 7}, DType::f64, 2);
  const Tensor codes = random_tensor({11}, DType::i32, 3);
  const Tensor scalar = scalar_tensor(0.125);
  const Tensor none = empty({0, 4});
  const Tensor view = random_tensor({6, 4}, DType::f32, 4).t();  // non-contiguous
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"encoder.conv1.weight", weight}, {"codebook", table}, {"codes", codes},
      {"step_scale", scalar},           {"empty", none},     {"z.transposed", view}};
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"latent.step", "1200"}, {"note", "quotes \" and \\ and ünïcode"}};
  const std::string file = path("model.safetensors");
  save_safetensors(file, tensors, metadata);

  const SafetensorsFile loaded = load_safetensors(file);
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first);  // file order = save order
    expect_bit_exact(tensors[i].second.contiguous(), loaded.tensors[i].second);
    expect_bit_exact(tensors[i].second.contiguous(), loaded.at(tensors[i].first));
  }
  EXPECT_TRUE(loaded.contains("codebook"));
  EXPECT_FALSE(loaded.contains("decoder"));
  EXPECT_LATENT_ERROR(loaded.at("decoder"), "decoder", "codebook");

  // Layout: the header is padded to a multiple of 8, and the data section follows it.
  const std::string bytes = read_file(file);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_NE(bytes.find("\"dtype\":\"F64\""), std::string::npos);
  EXPECT_NE(bytes.find("\"__metadata__\""), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 216 * 4 + 35 * 8 + 11 * 4 + 4 + 0 + 24 * 4);
}

TEST_F(Safetensors, EmptyFileAndNoMetadata) {
  save_safetensors(path("nothing.safetensors"), {});
  const SafetensorsFile loaded = load_safetensors(path("nothing.safetensors"));
  EXPECT_TRUE(loaded.tensors.empty());
  EXPECT_TRUE(loaded.metadata.empty());
  EXPECT_EQ(read_file(path("nothing.safetensors")).substr(8, 2), "{}");
}

TEST_F(Safetensors, ReadsHalfBfloatAndInt64AsWritten) {
  // Half 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (subnormal), 0x7C00 = inf.
  // BFloat16 0x3FC0 = 1.5, 0xC2F7 = -123.5.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
      R"("l":{"dtype":"I64","shape":[2],"data_offsets":[12,28]}})";
  const std::string data = raw(std::vector<std::uint16_t>{0x3C00, 0xC000, 0x0001, 0x7C00}) +
                           raw(std::vector<std::uint16_t>{0x3FC0, 0xC2F7}) +
                           raw(std::vector<std::int64_t>{-3, 2000000000});
  const std::string file = write_raw("mixed.safetensors", safetensors_bytes(header, data));
  const SafetensorsFile loaded = load_safetensors(file);
  EXPECT_EQ(loaded.names(), (std::vector<std::string>{"h", "b", "l"}));
  EXPECT_EQ(loaded.at("h").to_vector<float>(),
            (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24),
                                std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(loaded.at("b").to_vector<float>(), (std::vector<float>{1.5f, -123.5f}));
  EXPECT_EQ(loaded.at("l").dtype(), DType::i32);
  EXPECT_EQ(loaded.at("l").to_vector<std::int32_t>(), (std::vector<std::int32_t>{-3, 2000000000}));
}

TEST_F(Safetensors, MalformedFilesAreErrorsNamingFileAndTensor) {
  const std::string eight = std::string(8, '\0');
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  std::uint64_t begin, std::uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
  };
  struct Case {
    const char* name;
    std::string bytes;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {"short.st", "abc", {"bytes long"}},
      {"hugeheader.st", le_bytes(std::uint64_t{1} << 40, 8) + "{}", {"100 MB"}},
      {"header_past_end.st", le_bytes(100, 8) + "{}", {"truncated"}},
      {"notjson.st", safetensors_bytes("{\"a\": [1, 2", ""), {"not valid JSON"}},
      {"notobject.st", safetensors_bytes("[1, 2, 3]", ""), {"not a JSON object"}},
      {"dtype.st", safetensors_bytes("{" + entry("w", "C64", "[1]", 0, 8) + "}", eight),
       {"'w'", "C64"}},
      {"size.st", safetensors_bytes("{" + entry("w", "F32", "[3]", 0, 8) + "}", eight),
       {"'w'", "need 12 bytes"}},
      {"outside.st", safetensors_bytes("{" + entry("w", "F64", "[2]", 0, 16) + "}", eight),
       {"'w'", "truncated"}},
      {"overlap.st",
       safetensors_bytes("{" + entry("a", "F32", "[2]", 0, 8) + "," +
                             entry("b", "F32", "[1]", 4, 8) + "}",
                         eight),
       {"'a'", "'b'", "overlaps"}},
      {"gap.st", safetensors_bytes("{" + entry("a", "F32", "[1]", 4, 8) + "}", eight),
       {"'a'", "gap"}},
      {"trailing.st", safetensors_bytes("{" + entry("a", "F32", "[1]", 0, 4) + "}", eight),
       {"trailing"}},
      {"reversed.st", safetensors_bytes("{" + entry("a", "F32", "[0]", 8, 4) + "}", eight),
       {"'a'", "begin after end"}},
      {"negative.st", safetensors_bytes("{" + entry("a", "F32", "[-2]", 0, 8) + "}", eight),
       {"'a'", "shape"}},
      {"noshape.st",
       safetensors_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eight),
       {"'a'", "\"shape\""}},
      {"notentry.st", safetensors_bytes(R"({"a": 5})", ""), {"'a'", "not a JSON object"}},
      {"metadata.st", safetensors_bytes(R"({"__metadata__":{"epoch":3}})", ""),
       {"epoch", "not a string"}},
      {"duplicate.st",
       safetensors_bytes("{" + entry("a", "F32", "[2]", 0, 8) + "," +
                             entry("a", "F32", "[2]", 0, 8) + "}",
                         eight),
       {"'a'", "more than once"}},
      {"i64range.st",
       safetensors_bytes("{" + entry("big", "I64", "[1]", 0, 8) + "}",
                         raw(std::vector<std::int64_t>{std::int64_t{1} << 35})),
       {"'big'", "int32"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = write_raw(c.name, c.bytes);
    std::vector<std::string> mentions = c.mentions;
    mentions.push_back(file);
    EXPECT_TRUE(test::throws_error([&] { load_safetensors(file); }, mentions));
  }
  EXPECT_LATENT_ERROR(load_safetensors(path("absent.st")), path("absent.st"));
}

TEST_F(Safetensors, SaveRejectsBadNamesAndLeavesNoFile) {
  const std::string file = path("bad.safetensors");
  EXPECT_LATENT_ERROR(save_safetensors(file, {{"a", arange(2)}, {"a", arange(3)}}), file,
                        "'a'", "more than once");
  EXPECT_LATENT_ERROR(save_safetensors(file, {{"", arange(2)}}), file, "empty name");
  EXPECT_LATENT_ERROR(save_safetensors(file, {{"__metadata__", arange(2)}}), file, "reserved");
  EXPECT_LATENT_ERROR(save_safetensors(file, {{"u", Tensor()}}), file, "'u'");
  EXPECT_LATENT_ERROR(save_safetensors(file, {{std::string("\xff\xfe"), arange(2)}}), file,
                        "UTF-8");
  EXPECT_EQ(entries(), std::vector<std::string>{});
}

TEST_F(Safetensors, OverwriteIsAtomicReplacement) {
  const std::string file = path("ckpt.safetensors");
  save_safetensors(file, {{"w", full({4}, 1.0)}});
  save_safetensors(file, {{"w", full({2}, 2.0)}, {"b", full({1}, 3.0)}});
  const SafetensorsFile loaded = load_safetensors(file);
  EXPECT_EQ(loaded.at("w").to_vector<float>(), (std::vector<float>{2.0f, 2.0f}));
  EXPECT_EQ(entries(), std::vector<std::string>{"ckpt.safetensors"});
}

// =================================================================== PNG
using Png = IoTempDir;

// An image whose every value is an exact multiple of 1/255.
Tensor eight_bit_image(const Shape& shape, std::uint64_t seed) {
  Generator gen(seed);
  Tensor t = empty(shape);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    p[i] = static_cast<float>(gen.next_int(256)) / 255.0f;
  return t;
}

TEST_F(Png, RoundTripGrayRgbRgbaExactly) {
  for (const Shape& shape :
       {Shape{5, 7}, Shape{1, 28, 28}, Shape{3, 9, 4}, Shape{4, 2, 3}, Shape{1, 1, 1}}) {
    SCOPED_TRACE(shape_str(shape));
    const Tensor image = eight_bit_image(shape, static_cast<std::uint64_t>(shape_numel(shape)));
    const std::string file = path("img.png");
    save_png(file, image);
    const Tensor back = load_png(file);
    const Shape expected = shape.size() == 2 ? Shape{1, shape[0], shape[1]} : shape;
    EXPECT_EQ(back.shape(), expected);
    EXPECT_EQ(back.to_vector<float>(), image.to_vector<float>());
  }
  EXPECT_EQ(entries(), std::vector<std::string>{"img.png"});
}

TEST_F(Png, ClampsRoundsAndAcceptsViewsAndDouble) {
  const Tensor values = from_vector(std::vector<double>{-1.0, 0.0, 0.5, 1.0, 7.0,
                                                        1.0 / 255.0 * 0.49},
                                    {1, 6});
  save_png(path("clamp.png"), values.t().t());
  const std::vector<float> back = load_png(path("clamp.png")).to_vector<float>();
  EXPECT_EQ(back, (std::vector<float>{0.0f, 0.0f, 128.0f / 255.0f, 1.0f, 1.0f, 0.0f}));
}

TEST_F(Png, BadImagesAndFilesAreErrors) {
  const std::string file = path("bad.png");
  EXPECT_LATENT_ERROR(save_png(file, zeros({2, 4, 4})), file, "channels");
  EXPECT_LATENT_ERROR(save_png(file, zeros({16})), file, "[H, W]");
  EXPECT_LATENT_ERROR(save_png(file, zeros({4, 4}, DType::i32)), file, "float");
  EXPECT_LATENT_ERROR(save_png(file, zeros({0, 4})), file);
  EXPECT_LATENT_ERROR(save_png(file, full({2, 2}, std::nan(""))), file, "NaN");
  EXPECT_EQ(entries(), std::vector<std::string>{});

  const std::string garbage = write_raw("garbage.png", "GIF89a definitely not a png");
  EXPECT_LATENT_ERROR(load_png(garbage), garbage);
  save_png(path("good.png"), eight_bit_image({3, 16, 16}, 9));
  const std::string bytes = read_file(path("good.png"));
  const std::string cut = write_raw("cut.png", bytes.substr(0, bytes.size() / 2));
  EXPECT_LATENT_ERROR(load_png(cut), cut);
  EXPECT_LATENT_ERROR(load_png(path("absent.png")), path("absent.png"));
}

// =================================================================== image_grid
TEST(IoImageGrid, LayoutMatchesMakeGrid) {
  // Five 2x3 single-channel images, image k filled with k + 1; 3 per row, 1 pixel of 0.5.
  Tensor images = empty({5, 1, 2, 3});
  for (std::int64_t k = 0; k < 5; ++k) images.narrow(0, k, 1).fill_(static_cast<double>(k + 1));
  const Tensor grid = image_grid(images, 3, 1, 0.5);
  ASSERT_EQ(grid.shape(), (Shape{1, 2 * 3 + 1, 3 * 4 + 1}));
  const std::vector<float> g = grid.to_vector<float>();
  auto at = [&](std::int64_t y, std::int64_t x) { return g[static_cast<std::size_t>(y * 13 + x)]; };
  for (std::int64_t y = 0; y < 7; ++y) {
    for (std::int64_t x = 0; x < 13; ++x) {
      const bool pad = y % 3 == 0 || x % 4 == 0;
      const std::int64_t k = (y / 3) * 3 + x / 4;
      const float expected = pad || k >= 5 ? 0.5f : static_cast<float>(k + 1);
      EXPECT_EQ(at(y, x), expected) << "at (" << y << ", " << x << ")";
    }
  }
}

TEST(IoImageGrid, VectorOverloadColumnsAndErrors) {
  const std::vector<Tensor> images = {full({4, 4}, 1.0), full({4, 4}, 0.25)};
  const Tensor grid = image_grid(images, 8, 0);  // only two columns are needed
  EXPECT_EQ(grid.shape(), (Shape{1, 4, 8}));
  EXPECT_EQ(grid.narrow(2, 4, 4).contiguous().to_vector<float>(), std::vector<float>(16, 0.25f));

  const Tensor rgb = image_grid(full({3, 3, 5, 5}, 0.75), 1, 2);
  EXPECT_EQ(rgb.shape(), (Shape{3, 3 * 7 + 2, 1 * 7 + 2}));

  EXPECT_LATENT_ERROR(image_grid(std::vector<Tensor>{}), "no images");
  EXPECT_LATENT_ERROR(image_grid(std::vector<Tensor>{zeros({4, 4}), zeros({4, 5})}),
                        "image 1");
  EXPECT_LATENT_ERROR(image_grid(zeros({2, 4, 4})), "[N, C, H, W]");
  EXPECT_LATENT_ERROR(image_grid(zeros({2, 1, 4, 4}), 0), "columns");
  EXPECT_LATENT_ERROR(image_grid(zeros({2, 1, 4, 4}), 2, -1), "padding");
}

}  // namespace
}  // namespace latent

namespace latent {
namespace {

// A PNG header claiming 65535 × 65535 pixels is refused before anything is allocated.
TEST(PngLimits, HugeHeaderIsRefusedBeforeAllocating) {
  const fs::path dir = fs::temp_directory_path() / ("latent-png-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string small = (dir / "small.png").string();
  save_png(small, zeros({1, 2, 3}));
  std::string bytes = read_file(small);
  // IHDR's width and height are bytes 16..23; patch them and the chunk's CRC (bytes 29..32).
  for (int i = 16; i < 24; ++i) bytes[i] = static_cast<char>(i % 4 < 2 ? 0x00 : 0xFF);
  const std::uint32_t crc = static_cast<std::uint32_t>(
      crc32(0, reinterpret_cast<const unsigned char*>(bytes.data() + 12), 17));
  for (int i = 0; i < 4; ++i) bytes[29 + i] = static_cast<char>(crc >> (24 - 8 * i));
  const std::string huge = (dir / "huge.png").string();
  write_file_atomic(huge, bytes);
  EXPECT_LATENT_ERROR(load_png(huge), huge, "65535x65535", "nothing was allocated");
  EXPECT_EQ(load_png(small).shape(), (Shape{1, 2, 3}));

  // A text chunk right after IHDR (byte 33) whose length field claims 2^31 − 1 bytes: refused
  // from the chunk table, before libpng would allocate a buffer of that size.
  std::string text_chunk = read_file(small);
  const std::string chunk = std::string("\x7f\xff\xff\xff", 4) + "tEXt" + "Comment";
  text_chunk.insert(33, chunk);
  const std::string lying = (dir / "lying-text.png").string();
  write_file_atomic(lying, text_chunk);
  EXPECT_LATENT_ERROR(load_png(lying), lying, "tEXt chunk at byte 33 claims 2147483647 bytes");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace latent
