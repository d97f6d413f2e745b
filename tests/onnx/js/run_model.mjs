// Run an ONNX model with onnxruntime-node and print its outputs as JSON.
// Usage: node run_model.mjs model.onnx inputs.json
// inputs.json: {"name": {"dims": [...], "data": [...]}} (float32); prints
// {"name": {"dims": [...], "data": [...]}} for every output.
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";

const [modelPath, inputsPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(inputsPath, "utf8"));
const feeds = {};
for (const [name, { dims, data }] of Object.entries(spec)) {
  feeds[name] = new ort.Tensor("float32", Float32Array.from(data), dims);
}
const session = await ort.InferenceSession.create(modelPath);
const results = await session.run(feeds);
const out = {};
for (const [name, tensor] of Object.entries(results)) {
  out[name] = { dims: Array.from(tensor.dims), data: Array.from(tensor.data) };
}
process.stdout.write(JSON.stringify(out));
