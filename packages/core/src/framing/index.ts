/**
 * Framing over non-blocking byte streams: length-prefixed frames and
 * newline-terminated lines, as in amy's frame_reader/frame_writer/line_reader.
 */
export type { ByteSink, ByteSource } from './io.js'
export { FrameReader, type FrameReaderOptions } from './frame-reader.js'
export { FrameWriter, type FrameWriterOptions } from './frame-writer.js'
export { LineReader, type LineReaderOptions } from './line-reader.js'
