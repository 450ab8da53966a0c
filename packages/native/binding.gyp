{
  "targets": [
    {
      "target_name": "amy_native",
      "sources": [
        "src/os/errors.cc",
        "src/os/socket.cc",
        "src/binding/addon.cc",
        "src/binding/poller_core.cc",
        "src/binding/poller_wrap.cc",
        "src/binding/registrar_wrap.cc",
        "src/binding/channel.cc",
        "src/binding/tcp_binding.cc",
        "src/binding/js_errors.cc",
        "src/binding/hot_io.cc",
        "src/binding/splice_binding.cc",
        "src/binding/iovecs.cc",
        "src/binding/tls_binding.cc",
        "src/tls/tls_error.cc",
        "src/tls/tls_context.cc",
        "src/tls/tls_session.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS=='linux'", { "sources": ["src/os/selector_epoll.cc", "src/os/splice_linux.cc"] }],
        ["OS!='linux'", { "sources": ["src/os/splice_fallback.cc"] }],
        ["OS=='mac' or OS=='freebsd' or OS=='openbsd' or OS=='netbsd'", {
          "sources": ["src/os/selector_kqueue.cc"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.15"
          }
        }]
      ]
    }
  ]
}
