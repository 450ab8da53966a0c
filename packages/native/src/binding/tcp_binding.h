// Plain functions over fds for TcpListener and TcpStream. The TypeScript
// objects own the fds; these calls never keep one.
#pragma once

#include <napi.h>

namespace amy::binding {
void define_tcp(Napi::Env env, Napi::Object exports);
}
