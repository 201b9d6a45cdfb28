#include "simt/static_shared.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string_view>

// The anchor: a thread-local variable of the executable whose symbol the table names.
extern "C" {
thread_local char latent_simt_tls_anchor = 0;
}

namespace latent::simt::detail {
namespace {

struct Tagged {
  std::int64_t offset;  // from the anchor
  std::size_t bytes;
};

std::vector<Tagged> read_symbol_table() {
  std::vector<Tagged> out;
  const int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    ::close(fd);
    return out;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  std::vector<std::pair<std::uint64_t, std::size_t>> tagged;
  bool have_anchor = false;
  std::uint64_t anchor = 0;
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
      eh->e_shoff + std::size_t{eh->e_shnum} * sizeof(Elf64_Shdr) <= size) {
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
      const Elf64_Shdr& strtab = sh[sh[i].sh_link];
      if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size)
        continue;
      const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
      const std::size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
      const char* names = reinterpret_cast<const char*>(base + strtab.sh_offset);
      for (std::size_t k = 0; k < n; ++k) {
        if (ELF64_ST_TYPE(sym[k].st_info) != STT_TLS || sym[k].st_name >= strtab.sh_size)
          continue;
        const std::string_view name(names + sym[k].st_name);
        if (name == "latent_simt_tls_anchor") {
          have_anchor = true;
          anchor = sym[k].st_value;
        } else if (name.find("B13latent_shared") != std::string_view::npos &&
                   sym[k].st_size > 0) {
          tagged.emplace_back(sym[k].st_value, sym[k].st_size);
        }
      }
    }
  }
  ::munmap(map, size);
  if (!have_anchor) return out;
  // Merge overlapping or adjacent ranges (the same variable may be listed twice).
  std::sort(tagged.begin(), tagged.end());
  for (const auto& [value, bytes] : tagged) {
    const std::int64_t offset = static_cast<std::int64_t>(value - anchor);
    if (!out.empty() && offset <= out.back().offset + static_cast<std::int64_t>(out.back().bytes)) {
      const std::int64_t end = std::max(out.back().offset + static_cast<std::int64_t>(out.back().bytes),
                                        offset + static_cast<std::int64_t>(bytes));
      out.back().bytes = static_cast<std::size_t>(end - out.back().offset);
    } else {
      out.push_back({offset, bytes});
    }
  }
  return out;
}

const std::vector<Tagged>& tagged_variables() {
  static const std::vector<Tagged> table = read_symbol_table();
  return table;
}

}  // namespace

std::vector<StaticSharedRange> static_shared_ranges_for_this_thread() {
  std::vector<StaticSharedRange> ranges;
  auto* anchor = reinterpret_cast<std::byte*>(&latent_simt_tls_anchor);
  for (const Tagged& t : tagged_variables()) ranges.push_back({anchor + t.offset, t.bytes});
  return ranges;
}

}  // namespace latent::simt::detail
