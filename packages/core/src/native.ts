// The one place @amy/core touches the addon. `import = require` keeps the
// calls direct (no interop getters on the hot path).
import native = require('@amy/native')

export default native
export type {
  NativePoller,
  NativeRegistrar,
  NativeReceiver,
  NativeSender,
  NativeTlsContextOptions,
  NativeTlsInfo,
  NativePeerCertificate,
  SocketAddressInfo,
  SysError,
  TlsError,
} from '@amy/native'
