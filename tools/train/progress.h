// What `latent train` shows while it runs: a progress bar redrawn in place on a terminal, or
// one line per logging step elsewhere. The loss shown is the mean of the last log window,
// the only loss the trainer reads back from the device.
#pragma once

#include <cstdint>
#include <string>

namespace latent::train {

// "m:ss" or "h:mm:ss".
std::string format_duration(double seconds);

struct Progress {
  std::int64_t step = 0, total_steps = 0;
  bool has_loss = false;  // false until the first logging step
  double loss = 0.0;      // the last logged window's mean loss
  double images_per_second = 0.0;
  double eta_seconds = 0.0;
};

// "step 12/100  loss 0.01234  3000 img/s  ETA 0:12" (loss "-" before the first log).
std::string progress_line(const Progress& p);
// The bar and the line on stderr, redrawn with '\r'; a newline after the last step.
void draw_progress_bar(const Progress& p);

}  // namespace latent::train
