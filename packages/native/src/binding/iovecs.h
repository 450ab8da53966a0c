// An array of Uint8Arrays as iovecs, for the writev-style exports (TCP and
// TLS). The storage is per thread and reused, so the hot path allocates
// nothing once it has grown; the result is valid until the next call on
// this thread. At most IOV_MAX buffers are taken: a longer list becomes a
// partial write, not an error.
#pragma once

#include <napi.h>
#include <sys/uio.h>

#include <vector>

namespace amy::binding {

const std::vector<iovec>& iovecs_from(Napi::Env env, Napi::Value list);

}  // namespace amy::binding
