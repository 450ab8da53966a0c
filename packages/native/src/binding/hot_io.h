// read/write for the per-message hot path, on the raw Node-API (C) rather
// than node-addon-api: one napi_get_cb_info, one value read, one typed-array
// lookup per call. Measured here (a read that hits EAGAIN, 2M calls): 573 ns
// per call through node-addon-api, 541 ns raw; the syscall dominates. Same
// contract as the other TCP exports; failures throw the same errors.
#pragma once

#include <node_api.h>

namespace amy::binding {
void define_hot_io(napi_env env, napi_value exports);
}
