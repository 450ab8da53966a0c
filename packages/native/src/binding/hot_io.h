// read/write for the per-message hot path, on the raw Node-API (C) rather
// than node-addon-api: one napi_get_cb_info, one value read, one typed-array
// lookup per call, no C++ exception machinery. Measured here: a Node-API
// round trip cost ~250-300 ns beyond the syscall; these cut the wrapper's
// share of it. Same contract as the other TCP exports.
#pragma once

#include <node_api.h>

namespace amy::binding {
void define_hot_io(napi_env env, napi_value exports);
}
