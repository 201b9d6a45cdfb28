#include "tools/train/progress.h"

#include <algorithm>
#include <cstdio>

namespace latent::train {

std::string format_duration(double seconds) {
  const long s = static_cast<long>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string progress_line(const Progress& p) {
  char loss[32] = "-";
  if (p.has_loss) std::snprintf(loss, sizeof loss, "%.5f", p.loss);
  char buf[160];
  std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %s  %.0f img/s  ETA %s",
                static_cast<long long>(p.step), static_cast<long long>(p.total_steps), loss,
                p.images_per_second, format_duration(p.eta_seconds).c_str());
  return buf;
}

void draw_progress_bar(const Progress& p) {
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * p.step / std::max<std::int64_t>(p.total_steps, 1));
  std::fprintf(stderr, "\r[%s%s] %s   ", std::string(filled, '=').c_str(),
               std::string(kWidth - filled, ' ').c_str(), progress_line(p).c_str());
  if (p.step == p.total_steps) std::fprintf(stderr, "\n");
}

}  // namespace latent::train
