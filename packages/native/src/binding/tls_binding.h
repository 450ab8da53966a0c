// NativeTlsContext and NativeTlsSession: the JavaScript face of src/tls.
// A context crosses threads as its id (the process-wide registry); a
// session belongs to the thread that made it and never owns its fd.
#pragma once

#include <napi.h>

namespace amy::binding {
void define_tls(Napi::Env env, Napi::Object exports);
}
