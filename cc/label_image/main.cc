// label_image: classify one image with a frozen TensorFlow GraphDef.
//
// slimcli's own C++ client for graphs written by `slim-export` + `slim-freeze`
// (or TensorFlow's freeze_graph). Flags and defaults follow TensorFlow's
// label_image example; the code is slimcli's. Steps:
//   1. read the image file, decode it (JPEG, PNG, GIF or BMP) in a small graph
//      built with tensorflow::Scope / ops::, bilinear-resize it to
//      --input_height x --input_width and normalize as (pixel - mean) / std;
//   2. run the frozen graph with that tensor fed to --input_layer;
//   3. print the top results of --output_layer as `label (index): score`.
//
// TensorFlow's own log lines ("Could not find cuda drivers", "failed call to
// cuInit", CPU-feature notes) are kept off the terminal, as slimcli's Python
// commands keep them: see HoldTensorFlowLog below. --verbose, or a
// TF_CPP_MIN_LOG_LEVEL of one's own, shows them.
//
// Build: scripts/build_label_image.sh (output bin/label_image).

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensorflow/cc/framework/scope.h"
#include "tensorflow/cc/ops/standard_ops.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/public/session.h"

namespace {

// --- TensorFlow's log lines, held back -------------------------------------------------------
// TensorFlow writes them to file descriptor 2 while its libraries load, before main() runs
// (no environment variable set from main() can stop those), and again when a session starts.
// So an entry of .preinit_array, which the dynamic linker runs before the initializers of any
// shared library, points descriptor 2 at an unnamed temporary file; label_image writes its own
// messages to the real stderr (g_real_stderr). If the process dies on a signal (a TensorFlow
// CHECK failure aborts), the held lines are copied to the real stderr first.
int g_real_stderr = 2;
int g_held = -1;

bool WantsTensorFlowLog(int argc, char** argv, char** envp) {
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "TF_CPP_MIN_LOG_LEVEL=", 21) == 0) return true;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verbose") == 0 || std::strcmp(argv[i], "--verbose=true") == 0 ||
        std::strcmp(argv[i], "--verbose=1") == 0) {
      return true;
    }
  }
  return false;
}

void HoldTensorFlowLog(int argc, char** argv, char** envp) {
  if (WantsTensorFlowLog(argc, argv, envp)) return;
  const char* dir = "/tmp";
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "TMPDIR=", 7) == 0 && (*e)[7] != '\0') dir = *e + 7;
  }
  int held = open(dir, O_TMPFILE | O_RDWR, 0600);
  if (held < 0) return;  // no temporary file: the lines stay visible, nothing else changes
  int real = dup(2);
  if (real < 0 || dup2(held, 2) < 0) {
    close(held);
    if (real >= 0) close(real);
    return;
  }
  g_held = held;
  g_real_stderr = real;
}

__attribute__((section(".preinit_array"), used)) void (*const kHoldTensorFlowLog)(
    int, char**, char**) = HoldTensorFlowLog;

// On a fatal signal: the held lines go to the real stderr (async-signal-safe calls only).
void ReleaseHeldLogAndDie(int signal_number) {
  char buffer[4096];
  ssize_t count;
  if (lseek(g_held, 0, SEEK_SET) == 0) {
    while ((count = read(g_held, buffer, sizeof buffer)) > 0) {
      if (write(g_real_stderr, buffer, count) < 0) break;
    }
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void ReleaseHeldLogOnFatalSignals() {
  if (g_held < 0) return;
  for (int signal_number : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    std::signal(signal_number, ReleaseHeldLogAndDie);
  }
}

// label_image's own error lines, on the real stderr.
void PrintError(const std::string& text) {
  std::string line = "label_image: " + text + "\n";
  if (write(g_real_stderr, line.data(), line.size()) < 0) std::cerr << line;
}

using tensorflow::Status;
using tensorflow::Tensor;

// Command-line settings, with TensorFlow label_image's current defaults.
struct Options {
  std::string image = "data/grace_hopper.jpg";
  std::string graph = "data/inception_v3_2016_08_28_frozen.pb";
  std::string labels = "data/imagenet_slim_labels.txt";
  int input_width = 299;
  int input_height = 299;
  float input_mean = 0.0f;
  float input_std = 255.0f;
  std::string input_layer = "input";
  std::string output_layer = "InceptionV3/Predictions/Reshape_1";
  bool self_test = false;
  int expected_label = 653;
  std::string root_dir = "";
  int top_k = 5;
  bool verbose = false;
};

// A user-facing failure: the message names the bad value and the fix.
struct Failure {
  std::string message;
};

[[noreturn]] void Fail(const std::string& message) { throw Failure{message}; }

const char kUsage[] =
    "usage: label_image [--flag=value ...]\n"
    "  --image=PATH          image file (JPEG, PNG, GIF or BMP)\n"
    "  --graph=PATH          frozen GraphDef (.pb, binary)\n"
    "  --labels=PATH         labels: one per line, or `id:name` lines (slim labels.txt)\n"
    "  --input_width=N       width the image is resized to (299)\n"
    "  --input_height=N      height the image is resized to (299)\n"
    "  --input_mean=X        subtracted from each pixel value in [0, 255] (0)\n"
    "  --input_std=X         the difference is divided by this (255)\n"
    "  --input_layer=NAME    input node (input)\n"
    "  --output_layer=NAME   output node (InceptionV3/Predictions/Reshape_1)\n"
    "  --top_k=N             how many results to print (5)\n"
    "  --self_test=BOOL      exit 1 unless the top label is --expected_label (653)\n"
    "  --root_dir=DIR        prefix for --image, --graph and --labels\n"
    "  --verbose=BOOL        also show TensorFlow's own log lines (CUDA, CPU features)\n";

bool ParseBool(const std::string& name, const std::string& value) {
  if (value.empty() || value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  Fail("--" + name + "=" + value + " is not a boolean; use true or false");
}

double ParseNumber(const std::string& name, const std::string& value) {
  char* end = nullptr;
  double parsed = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') {
    Fail("--" + name + "=" + value + " is not a number; pass e.g. --" + name + "=127.5");
  }
  return parsed;
}

int ParsePositiveInt(const std::string& name, const std::string& value) {
  double parsed = ParseNumber(name, value);
  if (parsed < 1 || parsed != static_cast<int>(parsed)) {
    Fail("--" + name + "=" + value + " must be a positive integer");
  }
  return static_cast<int>(parsed);
}

void SetOption(Options* opt, const std::string& name, const std::string& value) {
  std::map<std::string, std::string*> strings = {
      {"image", &opt->image},           {"graph", &opt->graph},
      {"labels", &opt->labels},         {"input_layer", &opt->input_layer},
      {"output_layer", &opt->output_layer}, {"root_dir", &opt->root_dir}};
  if (strings.count(name)) {
    *strings[name] = value;
  } else if (name == "input_width") {
    opt->input_width = ParsePositiveInt(name, value);
  } else if (name == "input_height") {
    opt->input_height = ParsePositiveInt(name, value);
  } else if (name == "top_k") {
    opt->top_k = ParsePositiveInt(name, value);
  } else if (name == "expected_label") {
    opt->expected_label = static_cast<int>(ParseNumber(name, value));
  } else if (name == "input_mean") {
    opt->input_mean = static_cast<float>(ParseNumber(name, value));
  } else if (name == "input_std") {
    opt->input_std = static_cast<float>(ParseNumber(name, value));
    if (opt->input_std == 0.0f) Fail("--input_std=0 would divide by zero; pass e.g. 255");
  } else if (name == "self_test") {
    opt->self_test = ParseBool(name, value);
  } else if (name == "verbose") {
    opt->verbose = ParseBool(name, value);
  } else {
    Fail("unknown flag --" + name + "; run label_image --help for the list of flags");
  }
}

// Accepts `--name=value` and `--name value` (booleans may stand alone).
// Returns false when help was asked for.
bool ParseFlags(int argc, char** argv, Options* opt) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return false;
    if (arg.rfind("--", 0) != 0) {
      Fail("unexpected argument '" + arg + "'; flags look like --image=photo.jpg");
    }
    std::string body = arg.substr(2);
    size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    std::string value;
    if (eq != std::string::npos) {
      value = body.substr(eq + 1);
    } else if (name != "self_test" && name != "verbose" && i + 1 < argc) {
      value = argv[++i];
    } else if (name != "self_test" && name != "verbose") {
      Fail("flag --" + name + " needs a value, e.g. --" + name + "=...");
    }
    SetOption(opt, name, value);
  }
  return true;
}

std::string JoinRoot(const std::string& root, const std::string& path) {
  if (root.empty() || (!path.empty() && path[0] == '/')) return path;
  return root.back() == '/' ? root + path : root + "/" + path;
}

std::string ReadWholeFile(const std::string& path, const std::string& flag) {
  tensorflow::Env* env = tensorflow::Env::Default();
  if (!env->FileExists(path).ok()) {
    Fail(flag + " file '" + path + "' does not exist; pass an existing file with --" + flag +
         "=PATH");
  }
  std::string contents;
  Status status = tensorflow::ReadFileToString(env, path, &contents);
  if (!status.ok()) Fail("cannot read " + flag + " file '" + path + "': " + status.ToString());
  return contents;
}

tensorflow::GraphDef LoadGraph(const std::string& path) {
  std::string bytes = ReadWholeFile(path, "graph");
  tensorflow::GraphDef graph_def;
  if (!graph_def.ParseFromString(bytes)) {
    Fail("graph file '" + path + "' is not a binary GraphDef; freeze it with slim-freeze " +
         "(or write it with --input_binary=true)");
  }
  return graph_def;
}

// Node names that look like outputs (softmax, predictions), for error messages.
std::string OutputCandidates(const tensorflow::GraphDef& graph_def) {
  std::vector<std::string> found;
  for (const auto& node : graph_def.node()) {
    const std::string& name = node.name();
    bool looks_like_output = node.op() == "Softmax" ||
                             name.find("Predictions") != std::string::npos ||
                             name.find("predictions") != std::string::npos;
    if (looks_like_output) found.push_back(name);
  }
  if (found.empty() && graph_def.node_size() > 0) {
    found.push_back(graph_def.node(graph_def.node_size() - 1).name());
  }
  std::string joined;
  for (const auto& name : found) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

// Checks the two layers exist; returns the channel count the input expects (3 if unknown).
int CheckLayers(const tensorflow::GraphDef& graph_def, const Options& opt) {
  const tensorflow::NodeDef* input = nullptr;
  bool has_output = false;
  std::string placeholders;
  for (const auto& node : graph_def.node()) {
    if (node.name() == opt.input_layer) input = &node;
    if (node.name() == opt.output_layer) has_output = true;
    if (node.op() == "Placeholder") {
      placeholders += (placeholders.empty() ? "" : ", ") + node.name();
    }
  }
  if (input == nullptr) {
    Fail("no node named --input_layer=" + opt.input_layer + " in the graph; placeholders: " +
         (placeholders.empty() ? std::string("none") : placeholders));
  }
  if (!has_output) {
    Fail("no node named --output_layer=" + opt.output_layer +
         " in the graph; nodes that look like outputs: " + OutputCandidates(graph_def));
  }
  auto attr = input->attr().find("shape");
  if (attr != input->attr().end()) {
    const auto& shape = attr->second.shape();
    if (shape.dim_size() == 4 && shape.dim(3).size() > 0) return shape.dim(3).size();
  }
  return 3;
}

// Decodes, resizes and normalizes the image with a graph run in a plain Session.
Tensor PrepareImage(const std::string& image_bytes, const Options& opt, int channels) {
  tensorflow::Scope root = tensorflow::Scope::NewRootScope();
  namespace ops = tensorflow::ops;
  auto encoded = ops::Placeholder(root.WithOpName("encoded"), tensorflow::DT_STRING);
  auto decoded = ops::DecodeImage(root.WithOpName("decoded"), encoded,
                                  ops::DecodeImage::Channels(channels).ExpandAnimations(false));
  auto as_float = ops::Cast(root, decoded, tensorflow::DT_FLOAT);
  auto batch = ops::ExpandDims(root, as_float, 0);
  auto resized = ops::ResizeBilinear(root, batch, ops::Const(root, {opt.input_height,
                                                                    opt.input_width}));
  auto centred = ops::Sub(root, resized, ops::Const(root, opt.input_mean));
  ops::Div(root.WithOpName("normalized"), centred, ops::Const(root, opt.input_std));
  tensorflow::GraphDef graph_def;
  Status status = root.ToGraphDef(&graph_def);
  if (!status.ok()) Fail("building the preprocessing graph failed: " + status.ToString());

  std::unique_ptr<tensorflow::Session> session(tensorflow::NewSession({}));
  status = session->Create(graph_def);
  if (!status.ok()) Fail("creating the preprocessing session failed: " + status.ToString());
  Tensor bytes(tensorflow::DT_STRING, tensorflow::TensorShape({}));
  bytes.scalar<tensorflow::tstring>()() = image_bytes;
  std::vector<Tensor> outputs;
  status = session->Run({{"encoded", bytes}}, {"normalized"}, {}, &outputs);
  if (!status.ok()) {
    Fail("cannot decode --image=" + opt.image + " (JPEG, PNG, GIF or BMP expected): " +
         std::string(status.message()));
  }
  return outputs[0];
}

Tensor RunGraph(const tensorflow::GraphDef& graph_def, const Tensor& image, const Options& opt) {
  std::unique_ptr<tensorflow::Session> session(tensorflow::NewSession({}));
  Status status = session->Create(graph_def);
  if (!status.ok()) Fail("loading --graph=" + opt.graph + " failed: " + status.ToString());
  std::vector<Tensor> outputs;
  status = session->Run({{opt.input_layer, image}}, {opt.output_layer}, {}, &outputs);
  if (!status.ok()) Fail("running the graph failed: " + std::string(status.message()));
  return outputs[0];
}

// Labels: `id:name` lines (slim's labels.txt) map ids; otherwise line i is label i.
std::map<int, std::string> ReadLabels(const std::string& path) {
  std::istringstream lines(ReadWholeFile(path, "labels"));
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    all.push_back(line);
  }
  while (!all.empty() && all.back().empty()) all.pop_back();
  std::map<int, std::string> by_id;
  bool all_have_ids = !all.empty();
  for (const auto& line : all) {
    size_t colon = line.find(':');
    char* end = nullptr;
    long id = colon == std::string::npos ? 0 : std::strtol(line.c_str(), &end, 10);
    if (colon == std::string::npos || colon == 0 || end != line.c_str() + colon) {
      all_have_ids = false;
      break;
    }
    by_id[static_cast<int>(id)] = line.substr(colon + 1);
  }
  if (all_have_ids) return by_id;
  std::map<int, std::string> by_line;
  for (size_t i = 0; i < all.size(); ++i) by_line[static_cast<int>(i)] = all[i];
  return by_line;
}

// Prints the top scores of the first row; returns the index of the best one.
int PrintTop(const Tensor& scores, const std::map<int, std::string>& labels, int top_k) {
  if (scores.dtype() != tensorflow::DT_FLOAT || scores.dims() < 1 ||
      scores.NumElements() == 0) {
    Fail("the output layer gave " + scores.DebugString() + "; expected float scores");
  }
  const int64_t count = scores.dims() == 1 ? scores.dim_size(0)
                                           : scores.NumElements() / scores.dim_size(0);
  auto flat = scores.flat<float>();
  std::vector<std::pair<float, int>> ranked;
  for (int64_t i = 0; i < count; ++i) ranked.emplace_back(flat(i), static_cast<int>(i));
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int i = 0; i < std::min<int64_t>(top_k, count); ++i) {
    auto found = labels.find(ranked[i].second);
    std::string label = found != labels.end() ? found->second : std::to_string(ranked[i].second);
    std::cout << label << " (" << ranked[i].second << "): " << ranked[i].first << "\n";
  }
  return ranked[0].second;
}

int Run(const Options& opt) {
  const std::string image_path = JoinRoot(opt.root_dir, opt.image);
  const std::string graph_path = JoinRoot(opt.root_dir, opt.graph);
  const std::string labels_path = JoinRoot(opt.root_dir, opt.labels);
  std::string image_bytes = ReadWholeFile(image_path, "image");
  std::map<int, std::string> labels = ReadLabels(labels_path);
  tensorflow::GraphDef graph_def = LoadGraph(graph_path);
  int channels = CheckLayers(graph_def, opt);
  Tensor image = PrepareImage(image_bytes, opt, channels);
  Tensor scores = RunGraph(graph_def, image, opt);
  int top = PrintTop(scores, labels, opt.top_k);
  if (opt.self_test && top != opt.expected_label) {
    PrintError("self test failed: top label " + std::to_string(top) + ", expected " +
               std::to_string(opt.expected_label));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  ReleaseHeldLogOnFatalSignals();
  try {
    if (!ParseFlags(argc, argv, &opt)) {
      std::cout << kUsage;
      return 0;
    }
    return Run(opt);
  } catch (const Failure& failure) {
    PrintError("error: " + failure.message);
    return 1;
  }
}
