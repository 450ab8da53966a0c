'use strict'
// Loads the prebuilt binary for this platform from prebuilds/, or the one
// built from source in build/Release. The addon is context-aware: requiring
// this in a worker thread gives that thread its own instance. When neither
// loads, the error says why and what to install (ERR_NATIVE_LOAD), instead
// of a bare "No native build was found" or dlopen failure.
try {
  module.exports = require('node-gyp-build')(__dirname)
} catch (cause) {
  throw require('./load-error.js').nativeLoadError(cause)
}
