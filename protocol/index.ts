export * from "./errors.js";
export * from "./messages.js";
export * from "./codec.js";
export * from "./limits.js";
export * from "./paths.js";
export * from "./thrown.js";
export * from "./timers.js";
export * from "./values.js";
