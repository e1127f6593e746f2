// tensorboard_write — writes the event file that tests/logs/tensorboard_test.sh reads back with
// TensorBoard's own Python reader (tests/tools/check_tensorboard.py). The values are formulas that
// the checker recomputes independently:
//   scalar "train/loss" at steps 0 … 199: 5.5 * exp(-step / 30) + 0.001 * step, wall time 1.7e9 + step / 4
//   scalar "train/lr"   at steps 0, 10, … 190: 3e-4 * (step + 1) / 200
//   scalar "edge" at steps 0 … 5: 0, -1.5, 1e-30, 3.0e38, 123456.789, -7e-8
//   text   "samples" at steps 100 and 200: the text of argv[3] (decoded after a round trip through
//          the SentencePiece model argv[2], when given: sentencepiece and protobuf in one process)
// Usage: tensorboard_write OUT_DIR [TOKENIZER.model TEXT_FILE]; prints the event file's path.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "data/tokenizer.h"
#include "trainer/tensorboard.h"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: tensorboard_write OUT_DIR [TOKENIZER.model TEXT_FILE]\n");
    return 2;
  }
  try {
    std::string text = "ROMEO:\nBut soft, what light through yonder window breaks? \xe2\x9c\x93 \xc3\xa9\n";
    if (argc == 4) {
      sk::data::Tokenizer tok(argv[2]);
      std::ifstream in(argv[3], std::ios::binary);
      std::ostringstream os;
      os << in.rdbuf();
      text = tok.decode(tok.encode(os.str()));
    }
    sk::TensorBoardWriter tb(argv[1]);
    for (int s = 0; s < 200; ++s) tb.add_scalar("train/loss", s, 5.5 * std::exp(-s / 30.0) + 0.001 * s, 1.7e9 + s / 4.0);
    for (int s = 0; s < 200; s += 10) tb.add_scalar("train/lr", s, 3e-4 * (s + 1) / 200.0, 1.7e9 + s / 4.0);
    const double edge[] = {0.0, -1.5, 1e-30, 3.0e38, 123456.789, -7e-8};
    for (int s = 0; s < 6; ++s) tb.add_scalar("edge", s, edge[s], 1.7e9);
    tb.add_text("samples", 100, text, 1.7e9 + 25.0);
    tb.add_text("samples", 200, text + "(end)", 1.7e9 + 50.0);
    tb.flush();
    std::printf("%s\n", tb.path().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tensorboard_write: %s\n", e.what());
    return 1;
  }
  return 0;
}
