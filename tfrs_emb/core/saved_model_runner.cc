// Loads a SavedModel the way TF Serving does and runs one signature on given inputs.
//
// Built by tfrs_emb/core/cc_runner.py against the TensorFlow wheel's own headers,
// libtensorflow_framework and libtensorflow_cc (the C++ loader, kernels and session that
// tensorflow_model_server links), so a SavedModel that needs a Python-only op, an op
// library the server lacks or a signature the session cannot feed fails here too.
//
// Usage:
//   saved_model_runner EXPORT_DIR [--op_library=SO]... [--signature=NAME]
//                      [--input=NAME=TENSOR_PROTO_TEXT_FILE]...
// --op_library: custom-op library to load first (TF_LoadLibrary, as tf.load_op_library).
// --input: one per signature input, a tensorflow.TensorProto in protobuf text format.
// Prints one JSON object to stdout:
//   {"signature": NAME, "outputs": {KEY: {"dtype": "float", "shape": [..],
//                                         "values": [flat, row-major]}}}
// Strings are written as JSON strings of their raw bytes (UTF-8 passes through).
// Exit status 1 with a message on stderr on any failure.

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/cc/saved_model/loader.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "saved_model_runner: " << message << std::endl;
  return 1;
}

void WriteString(std::ostream& out, const std::string& s) {
  out << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out << buf;
    } else {
      out << c;
    }
  }
  out << '"';
}

// Shortest text that reads back as the same float/double (Python's json reads NaN and
// Infinity, the spelling TF Serving's REST API also uses).
template <typename T>
void WriteReal(std::ostream& out, T v, int digits) {
  if (std::isnan(v)) {
    out << "NaN";
  } else if (std::isinf(v)) {
    out << (v > 0 ? "Infinity" : "-Infinity");
  } else {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(v));
    out << buf;
  }
}

template <typename T>
void WriteReals(std::ostream& out, const tensorflow::Tensor& t, int digits) {
  auto flat = t.flat<T>();
  for (int64_t i = 0; i < flat.size(); ++i) {
    if (i) out << ',';
    WriteReal(out, flat(i), digits);
  }
}

template <typename T>
void WriteInts(std::ostream& out, const tensorflow::Tensor& t) {
  auto flat = t.flat<T>();
  for (int64_t i = 0; i < flat.size(); ++i) out << (i ? "," : "") << +flat(i);
}

bool WriteTensor(std::ostream& out, const tensorflow::Tensor& t) {
  out << "{\"dtype\":\"" << tensorflow::DataTypeString(t.dtype()) << "\",\"shape\":[";
  for (int d = 0; d < t.dims(); ++d) out << (d ? "," : "") << t.dim_size(d);
  out << "],\"values\":[";
  switch (t.dtype()) {
    case tensorflow::DT_FLOAT: WriteReals<float>(out, t, 9); break;
    case tensorflow::DT_DOUBLE: WriteReals<double>(out, t, 17); break;
    case tensorflow::DT_INT32: WriteInts<int32_t>(out, t); break;
    case tensorflow::DT_INT64: WriteInts<int64_t>(out, t); break;
    case tensorflow::DT_BOOL: {
      auto flat = t.flat<bool>();
      for (int64_t i = 0; i < flat.size(); ++i) out << (i ? "," : "") << (flat(i) ? "true" : "false");
      break;
    }
    case tensorflow::DT_STRING: {
      auto flat = t.flat<tensorflow::tstring>();
      for (int64_t i = 0; i < flat.size(); ++i) {
        if (i) out << ',';
        WriteString(out, std::string(flat(i)));
      }
      break;
    }
    default:
      return false;
  }
  out << "]}";
  return true;
}

// TF Serving feeds and fetches signature tensors by name; a sparse or composite (ragged)
// TensorInfo has no single tensor name to map to.
bool IsPlainTensor(const tensorflow::TensorInfo& info) {
  return info.encoding_case() == tensorflow::TensorInfo::kName;
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    return Fail("usage: saved_model_runner EXPORT_DIR [--op_library=SO]... "
                "[--signature=NAME] [--input=NAME=TENSOR_PROTO_TEXT_FILE]...");
  }
  const std::string export_dir = argv[1];
  std::string signature_name = "serving_default";
  std::map<std::string, std::string> input_files;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (StartsWith(arg, "--op_library=")) {
      const std::string path = arg.substr(13);
      TF_Status* status = TF_NewStatus();
      TF_LoadLibrary(path.c_str(), status);  // the handle stays loaded for the process
      const bool ok = TF_GetCode(status) == TF_OK;
      const std::string message = TF_Message(status);
      TF_DeleteStatus(status);
      if (!ok) return Fail("cannot load op library " + path + ": " + message);
    } else if (StartsWith(arg, "--signature=")) {
      signature_name = arg.substr(12);
    } else if (StartsWith(arg, "--input=") && arg.find('=', 8) != std::string::npos) {
      const size_t eq = arg.find('=', 8);
      input_files[arg.substr(8, eq - 8)] = arg.substr(eq + 1);
    } else {
      return Fail("unknown argument " + arg);
    }
  }

  tensorflow::SavedModelBundle bundle;
  // Tag "serve" = kSavedModelTagServe (tag_constants.h is not in the wheel).
  absl::Status status = tensorflow::LoadSavedModel(
      tensorflow::SessionOptions(), tensorflow::RunOptions(), export_dir, {"serve"}, &bundle);
  if (!status.ok()) return Fail("LoadSavedModel failed: " + status.ToString());

  const auto& signatures = bundle.meta_graph_def.signature_def();
  const auto found = signatures.find(signature_name);
  if (found == signatures.end()) return Fail("no signature " + signature_name);
  const tensorflow::SignatureDef& signature = found->second;

  // Feed by the signature's tensor names, as TF Serving's Predict does.
  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  for (const auto& [key, info] : signature.inputs()) {
    if (!IsPlainTensor(info)) return Fail("signature input " + key + " is not a plain tensor");
    const auto file = input_files.find(key);
    if (file == input_files.end()) return Fail("no --input for signature input " + key);
    tensorflow::TensorProto proto;
    status = tensorflow::ReadTextProto(tensorflow::Env::Default(), file->second, &proto);
    if (!status.ok()) return Fail("cannot read " + file->second + ": " + status.ToString());
    tensorflow::Tensor tensor;
    if (!tensor.FromProto(proto)) return Fail("bad TensorProto in " + file->second);
    if (tensor.dtype() != info.dtype()) {
      return Fail("input " + key + " is " + tensorflow::DataTypeString(tensor.dtype()) +
                  ", the signature wants " + tensorflow::DataTypeString(info.dtype()));
    }
    feeds.emplace_back(info.name(), tensor);
    input_files.erase(file);
  }
  if (!input_files.empty()) return Fail("input " + input_files.begin()->first +
                                        " is not in signature " + signature_name);
  std::vector<std::string> keys, fetches;
  for (const auto& [key, info] : signature.outputs()) {
    if (!IsPlainTensor(info)) return Fail("signature output " + key + " is not a plain tensor");
    keys.push_back(key);
    fetches.push_back(info.name());
  }
  std::vector<tensorflow::Tensor> outputs;
  status = bundle.session->Run(feeds, fetches, {}, &outputs);
  if (!status.ok()) return Fail("Session::Run failed: " + status.ToString());

  std::ostringstream out;
  out << "{\"signature\":";
  WriteString(out, signature_name);
  out << ",\"outputs\":{";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i) out << ',';
    WriteString(out, keys[i]);
    out << ':';
    if (!WriteTensor(out, outputs[i])) {
      return Fail("output " + keys[i] + " has unsupported dtype " +
                  tensorflow::DataTypeString(outputs[i].dtype()));
    }
  }
  out << "}}\n";
  std::cout << out.str();
  return 0;
}
