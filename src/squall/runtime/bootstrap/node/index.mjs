// Squall's Node.js runtime: loads the function's handler (_HANDLER) and serves it over the
// Lambda Runtime API ($AWS_LAMBDA_RUNTIME_API). Standard library only.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
// Streamed responses go over a connection of their own, as AWS's runtime client sends them.
const streamAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type";
const ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body";
let currentRequestId;

// The globals Lambda gives Node handlers for response streaming.
class HttpResponseStream {
  // A function URL's status and headers first: a JSON prelude, then 8 NUL bytes, then the body.
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType("application/vnd.awslambda.http-integration-response");
    underlyingStream.write(JSON.stringify(prelude ?? {}));
    underlyingStream.write(new Uint8Array(8));
    return underlyingStream;
  }
}
globalThis.awslambda = {
  streamifyResponse(handler, options) {
    handler[STREAMING] = "response";
    handler.streamOptions = options;
    return handler;
  },
  HttpResponseStream,
};

// The writable a streaming handler gets: each write is a chunk of one chunked POST .../response,
// opened at the first write (so setContentType can come first); a failure ends it with trailers.
function responseStream(requestId, options) {
  let req;
  let contentType = "application/octet-stream";
  let failure;
  let answered;
  const finished = new Promise((resolve) => (answered = resolve));
  const open = () => {
    if (req !== undefined) return req;
    const [host, port] = API.split(":");
    req = http.request({
      host,
      port,
      method: "POST",
      path: `${BASE}/invocation/${requestId}/response`,
      agent: streamAgent,
      headers: {
        "Lambda-Runtime-Function-Response-Mode": "streaming",
        "Transfer-Encoding": "chunked",
        Trailer: `${ERROR_TYPE_TRAILER}, ${ERROR_BODY_TRAILER}`,
        "Content-Type": contentType,
      },
    }, (res) => {
      res.resume();
      res.on("end", () => answered(res.statusCode));
    });
    req.on("error", (err) => answered(err));
    return req;
  };
  const stream = new Writable({
    highWaterMark: options?.highWaterMark,
    write(chunk, encoding, callback) {
      open().write(chunk, callback);
    },
    final(callback) {
      const r = open();
      if (failure !== undefined) {
        r.addTrailers({
          [ERROR_TYPE_TRAILER]: failure.errorType,
          [ERROR_BODY_TRAILER]: Buffer.from(JSON.stringify(failure)).toString("base64"),
        });
      }
      r.end(callback);
    },
  });
  stream.setContentType = (value) => {
    contentType = value;
    if (req !== undefined && !req.headersSent) req.setHeader("Content-Type", value);
  };
  stream.fail = (payload) => {
    failure = payload;
    if (!stream.writableEnded) stream.end();
  };
  stream.finished = finished;
  return stream;
}

// A streamifyResponse handler: runs to its end (or failure), then the stream is closed and answered.
async function invokeStreaming(handler, event, headers) {
  const stream = responseStream(headers["lambda-runtime-aws-request-id"], handler.streamOptions);
  const context = makeContext(headers, { waits: false });
  try {
    await handler(event, stream, context);
    if (!stream.writableEnded) stream.end();
  } catch (err) {
    const payload = errorPayload(err);
    console.error(`Invoke Error \t${JSON.stringify({ ...payload, trace: undefined, stack: payload.trace })}`);
    stream.fail(payload);
  }
  await stream.finished;
}

function request(method, urlPath, body, headers = {}) {
  const [host, port] = API.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: urlPath, method, agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// console.* as on Lambda: "<ISO time>\t<request id>\t<LEVEL>\t<message>", one record per write.
function patchConsole() {
  const levels = { log: "INFO", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG", trace: "TRACE" };
  for (const [name, level] of Object.entries(levels)) {
    console[name] = (...args) => {
      const line = `${new Date().toISOString()}\t${currentRequestId ?? "undefined"}\t${level}\t${util.format(...args)}\n`;
      process.stdout.write(line.replace(/\n(?!$)/g, "\r"));
    };
  }
}

function errorPayload(err, errorType) {
  if (err instanceof Error) {
    return {
      errorType: errorType ?? err.name ?? "Error",
      errorMessage: err.message,
      trace: String(err.stack ?? "").split("\n"),
    };
  }
  // unverified: a thrown non-Error reports its typeof as errorType (from memory of Lambda's Node runtime).
  return { errorType: errorType ?? typeof err, errorMessage: String(err), trace: [] };
}

// Logged as Lambda's Node runtime does: "<label> \t<payload JSON>" at level ERROR.
function postError(urlPath, payload, label) {
  const body = JSON.stringify(payload);
  console.error(`${label} \t${JSON.stringify({ ...payload, trace: undefined, stack: payload.trace })}`);
  return request("POST", urlPath, body, {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": payload.errorType,
  });
}

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
    this.stack = `${name}: ${message}\n${String(this.stack).split("\n").slice(1).join("\n")}`;
  }
}

function packageType(dir, root) {
  // The nearest package.json up to the task root decides whether ".js" is an ES module.
  for (let d = dir; d.startsWith(root); d = path.dirname(d)) {
    const pkg = path.join(d, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        return JSON.parse(fs.readFileSync(pkg, "utf8")).type ?? "commonjs";
      } catch {
        return "commonjs";
      }
    }
    if (d === root) break;
  }
  return "commonjs";
}

async function loadHandler(root, handlerString) {
  const fullPath = path.resolve(root, handlerString);
  const moduleRoot = path.dirname(fullPath);
  const base = path.basename(fullPath);
  const dot = base.indexOf(".");
  if (dot < 0) {
    // unverified: Lambda's wording for a handler with no "."; taken from memory of its Node runtime.
    throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  }
  const moduleName = base.slice(0, dot);
  const handlerPath = base.slice(dot + 1);
  const candidates = [".js", ".mjs", ".cjs"].map((ext) => path.join(moduleRoot, moduleName + ext));
  const file = candidates.find((f) => fs.existsSync(f));
  if (file === undefined) {
    throw new RuntimeError("Runtime.ImportModuleError", `Error: Cannot find module '${moduleName}'\nRequire stack:\n- /var/runtime/index.mjs`);
  }
  const esm = file.endsWith(".mjs") || (file.endsWith(".js") && packageType(moduleRoot, root) === "module");
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
    if (!esm && mod.default !== undefined) mod = mod.default;
  } catch (err) {
    // unverified: the "<name>: <message>" wording of UserCodeSyntaxError (ImportModuleError's is
    // verified in published Lambda responses: "Error: Cannot find module 'app'\nRequire stack:...").
    if (err instanceof SyntaxError) {
      throw new RuntimeError("Runtime.UserCodeSyntaxError", `${err.name}: ${err.message}`);
    }
    if (err && err.code === "ERR_MODULE_NOT_FOUND" || err && err.code === "MODULE_NOT_FOUND") {
      throw new RuntimeError("Runtime.ImportModuleError", `Error: ${err.message}`);
    }
    throw err;
  }
  let handler = mod;
  for (const part of handlerPath.split(".")) {
    handler = handler == null ? undefined : handler[part];
  }
  if (typeof handler !== "function") {
    throw new RuntimeError("Runtime.HandlerNotFound", `${moduleName}.${handlerPath} is undefined or not exported`);
  }
  return handler;
}

function makeContext(headers, callbackState) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  const parse = (v) => (v ? JSON.parse(v) : undefined);
  const env = process.env;
  return {
    get callbackWaitsForEmptyEventLoop() {
      return callbackState.waits;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      callbackState.waits = Boolean(v);
    },
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parse(headers["lambda-runtime-client-context"]),
    identity: parse(headers["lambda-runtime-cognito-identity"]),
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

function resourceCounts() {
  const counts = new Map();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function idle(baseline) {
  for (const [r, n] of resourceCounts()) if (n > (baseline.get(r) ?? 0)) return false;
  return true;
}

// Runs one invocation; resolves with ["ok", result] or ["error", err] once the handler is done
// (for callbacks with callbackWaitsForEmptyEventLoop, once the event loop has nothing else to do).
function invoke(handler, event, headers) {
  return new Promise((resolve) => {
    const state = { waits: true };
    const baseline = resourceCounts();
    let settled = false;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      if (state.waits) {
        // As Lambda: answer once the event loop has nothing left of the handler's (timers, sockets,
        // I/O), i.e. once no more resources are active than before the handler ran.
        // Checked from an immediate, which (unlike a firing timer) does not count itself.
        const poll = () => (idle(baseline) ? resolve(outcome) : setTimeout(() => setImmediate(poll), 1));
        setImmediate(poll);
      } else {
        resolve(outcome);
      }
    };
    const callback = (err, result) => finish(err != null ? ["error", err] : ["ok", result]);
    const context = makeContext(headers, state);
    context.done = callback;
    context.succeed = (r) => callback(null, r);
    context.fail = (e) => callback(e ?? "handled");
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (err) {
      state.waits = false;
      finish(["error", err]);
      return;
    }
    if (returned && typeof returned.then === "function") {
      returned.then(
        (r) => { state.waits = false; finish(["ok", r]); },
        (e) => { state.waits = false; finish(["error", e]); },
      );
    } else if (handler.length < 3) {
      state.waits = false;
      finish(["ok", returned]);
    }
  });
}

async function main() {
  patchConsole();
  process.on("unhandledRejection", async (reason) => {
    const err = new RuntimeError("Runtime.UnhandledPromiseRejection", String(reason instanceof Error ? `${reason.name}: ${reason.message}` : reason));
    await fail(err, "Unhandled Promise Rejection");
  });
  process.on("uncaughtException", async (err) => {
    await fail(err, "Uncaught Exception");
  });
  const root = process.env.LAMBDA_TASK_ROOT;
  let handler;
  try {
    handler = await loadHandler(root, process.env._HANDLER ?? "");
  } catch (err) {
    await postError(`${BASE}/init/error`, errorPayload(err), "Uncaught Exception");
    process.exit(129);
  }
  for (;;) {
    const next = await request("GET", `${BASE}/invocation/next`);
    currentRequestId = next.headers["lambda-runtime-aws-request-id"];
    const event = JSON.parse(next.body.toString("utf8") || "null");
    if (handler[STREAMING] === "response") {
      await invokeStreaming(handler, event, next.headers);
      continue;
    }
    const [kind, value] = await invoke(handler, event, next.headers);
    if (kind === "ok") {
      const body = JSON.stringify(value === undefined ? null : value);
      await request("POST", `${BASE}/invocation/${currentRequestId}/response`, body, { "Content-Type": "application/json" });
    } else {
      await postError(`${BASE}/invocation/${currentRequestId}/error`, errorPayload(value), "Invoke Error");
    }
  }
}

// An error outside any handler's reach: report it for the current invocation (or init), then exit.
async function fail(err, label) {
  const payload = errorPayload(err);
  const where = currentRequestId ? `${BASE}/invocation/${currentRequestId}/error` : `${BASE}/init/error`;
  try {
    await postError(where, payload, label);
  } finally {
    // unverified: the exit status; Lambda starts a fresh runtime after such an error either way.
    process.exit(129);
  }
}

main();
