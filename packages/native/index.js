'use strict'
// Loads the prebuilt binary for this platform from prebuilds/, or the one
// built from source in build/Release. The addon is context-aware: requiring
// this in a worker thread gives that thread its own instance.
module.exports = require('node-gyp-build')(__dirname)
