// NativeSplicePipe: the JavaScript face of os::SplicePipe. Bytes move
// between two fds inside the kernel; JavaScript sees only the counts, which
// are written into a Float64Array shared at construction (no object per
// call).
#pragma once

#include <napi.h>

namespace amy::binding {
void define_splice(Napi::Env env, Napi::Object exports);
}
