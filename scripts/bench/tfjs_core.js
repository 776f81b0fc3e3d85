// The TF.js side of the benchmark, shared by the worker (tfjs_worker.js) and the main-thread
// variant of tfjs.html (?main=1): the same MLP trained by TensorFlow.js on its WebAssembly
// backend. Benchmark-only; vendor/tfjs/ is copied from node_modules by scripts/bench/harness.py.
//
//   tfjsBench({threads: null|n, hidden, batch, steps, repeats, n, fit, cnn})
//     -> {simd, multithread, threads, crossOriginIsolated, custom: {best, median, rates}, fit?,
//         conv2d_error?}
// With cnn: true the network is the cnn preset's, conv5x16,pool2,conv5x32,pool2,dense128 (ReLU).
const here = new URL("./", self.location.href); // bench/
let initialised = null;

async function setUp(threads) {
  tf.wasm.setWasmPaths(new URL("vendor/tfjs/", here).href); // local files only
  if (threads) tf.wasm.setThreadsCount(threads);
  if (!(await tf.setBackend("wasm"))) throw new Error("the wasm backend did not start");
  await tf.ready();
  return {
    backend: tf.getBackend(),
    simd: await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"),
    multithread: await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"),
    threads: tf.wasm.getThreadsCount(),
    crossOriginIsolated: self.crossOriginIsolated === true,
    version: tf.version.tfjs,
  };
}

function syntheticData(n) {
  // Same statistics as the Python bench: random pixels /255, random labels.
  const pixels = new Float32Array(n * 784);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(Math.random() * 256) / 255;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(Math.random() * 10);
  return [tf.tensor2d(pixels, [n, 784]), tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 10).toFloat())];
}

function randomIndices(count, n) {
  const idx = new Int32Array(count);
  for (let i = 0; i < count; i++) idx[i] = Math.floor(Math.random() * n);
  return idx;
}

// The lowest-overhead TF.js training loop: optimizer.minimize on variables, cost read back each
// step (as scribblenet's Trainer reads its cost).
function customLoop({ hidden, batch, n }, X, Y) {
  const sizes = [784, ...hidden, 10];
  const params = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    params.push(tf.variable(tf.randomNormal([sizes[i], sizes[i + 1]], 0, Math.sqrt(2 / sizes[i]))));
    params.push(tf.variable(tf.zeros([sizes[i + 1]])));
  }
  const optimizer = tf.train.adam(1e-3);
  return () => {
    const idx = tf.tensor1d(randomIndices(batch, n), "int32");
    const cost = optimizer.minimize(() => {
      let A = tf.gather(X, idx); // (b, 784)
      for (let i = 0; i < params.length; i += 2) {
        const Z = tf.add(tf.matMul(A, params[i]), params[i + 1]);
        A = i + 2 < params.length ? tf.relu(Z) : Z;
      }
      return tf.losses.softmaxCrossEntropy(tf.gather(Y, idx), A);
    }, true);
    idx.dispose();
    const value = cost.dataSync()[0];
    cost.dispose();
    return value;
  };
}

// A valid k×k convolution as scribblenet computes it, im2col then one product: the k² shifted
// slices side by side on the channel axis (n·oh·ow, k·k·c), times W (k·k·c, c_out). The wasm
// backend has no Conv2DBackpropFilter kernel (4.22), so tf.conv2d cannot be trained on it.
function im2colConv(A, W, b, k) {
  const [n, h, w, c] = A.shape;
  const [oh, ow] = [h - k + 1, w - k + 1];
  const slices = [];
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) slices.push(tf.slice(A, [0, i, j, 0], [n, oh, ow, c]));
  const cols = tf.reshape(tf.concat(slices, 3), [n * oh * ow, k * k * c]);
  return tf.reshape(tf.add(tf.matMul(cols, W), b), [n, oh, ow, W.shape[1]]);
}

// The cnn preset's network, trained like customLoop's MLP (minimize, cost read back).
function cnnLoop({ batch, n }, X, Y) {
  const he = (fanIn, shape) => tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn)));
  const [W1, b1] = [he(25, [25, 16]), tf.variable(tf.zeros([16]))];
  const [W2, b2] = [he(400, [400, 32]), tf.variable(tf.zeros([32]))];
  const [W3, b3] = [he(512, [512, 128]), tf.variable(tf.zeros([128]))];
  const [W4, b4] = [he(128, [128, 10]), tf.variable(tf.zeros([10]))];
  const optimizer = tf.train.adam(1e-3);
  const images = tf.reshape(X, [n, 28, 28, 1]);
  return () => {
    const idx = tf.tensor1d(randomIndices(batch, n), "int32");
    const cost = optimizer.minimize(() => {
      let A = tf.gather(images, idx); // (b, 28, 28, 1)
      A = tf.maxPool(tf.relu(im2colConv(A, W1, b1, 5)), 2, 2, "valid"); // (b, 12, 12, 16)
      A = tf.maxPool(tf.relu(im2colConv(A, W2, b2, 5)), 2, 2, "valid"); // (b, 4, 4, 32)
      A = tf.relu(tf.add(tf.matMul(tf.reshape(A, [batch, 512]), W3), b3)); // (b, 128)
      return tf.losses.softmaxCrossEntropy(tf.gather(Y, idx), tf.add(tf.matMul(A, W4), b4));
    }, true);
    idx.dispose();
    const value = cost.dataSync()[0];
    cost.dispose();
    return value;
  };
}

/** Why tf.conv2d cannot be trained on this backend (null if it can). */
function conv2dGradError() {
  try {
    tf.tidy(() => tf.grad((w) => tf.sum(tf.conv2d(tf.ones([1, 6, 6, 1]), w, 1, "valid")))(tf.ones([3, 3, 1, 2])).dataSync());
    return null;
  } catch (err) {
    return String(err?.message ?? err).slice(0, 200);
  }
}

function bestOf(fn, steps, repeats, batch) {
  for (let i = 0; i < 3; i++) fn(); // warm-up: kernels, buffers, optimiser state
  const rates = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) fn();
    rates.push((steps * batch) / ((performance.now() - t0) / 1000));
  }
  const sorted = [...rates].sort((a, b) => a - b);
  return { best: sorted[sorted.length - 1], median: sorted[Math.floor(sorted.length / 2)], rates };
}

async function fitRate({ hidden, batch, repeats }, X, Y) {
  const model = tf.sequential();
  hidden.forEach((units, i) =>
    model.add(tf.layers.dense({ units, activation: "relu", ...(i === 0 ? { inputShape: [784] } : {}) })),
  );
  model.add(tf.layers.dense({ units: 10, activation: "softmax", ...(hidden.length ? {} : { inputShape: [784] }) }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  const rates = [];
  for (let r = 0; r < Math.max(2, Math.ceil(repeats / 2)); r++) {
    const t0 = performance.now();
    await model.fit(X, Y, { batchSize: batch, epochs: 1, shuffle: true, verbose: 0 });
    rates.push(X.shape[0] / ((performance.now() - t0) / 1000));
  }
  rates.shift(); // the first epoch compiles and allocates
  return { best: Math.max(...rates), rates };
}

async function tfjsBench(msg) {
  initialised ??= setUp(msg.threads);
  const info = await initialised;
  const options = { hidden: msg.hidden ?? [128], batch: msg.batch ?? 128, n: msg.n ?? 8192 };
  const [X, Y] = syntheticData(options.n);
  const result = { ...info, ...options, mainThread: typeof window !== "undefined" };
  const loop = msg.cnn ? cnnLoop(options, X, Y) : customLoop(options, X, Y);
  result.custom = bestOf(loop, msg.steps ?? 20, msg.repeats ?? 7, options.batch);
  if (msg.cnn) result.conv2d_error = conv2dGradError();
  if (msg.fit) result.fit = await fitRate({ ...options, repeats: msg.repeats ?? 7 }, X, Y);
  X.dispose();
  Y.dispose();
  return result;
}
