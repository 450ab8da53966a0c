/** Why create-amy refused: a stable code for scripts, a message for people. */
export type CreateAmyErrorCode =
  | 'ERR_INVALID_NAME'
  | 'ERR_DIR_NOT_EMPTY'
  | 'ERR_UNKNOWN_TEMPLATE'
  | 'ERR_INVALID_ARG'

export class CreateAmyError extends Error {
  readonly code: CreateAmyErrorCode
  constructor(code: CreateAmyErrorCode, message: string) {
    super(message)
    this.name = 'CreateAmyError'
    this.code = code
  }
}
