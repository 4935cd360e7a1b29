;; A WASI command that prints one line. Start it live:
;;   cargo run -- guest-examples/hello/main.wat
;; then edit the text below (and its length) and save: it runs again at once.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param $fd i32) (param $iovs i32) (param $iovs_len i32) (param $written i32) (result i32)))
  (memory (export "memory") 1)

  ;; The text to print, at offset 16.
  (data (i32.const 16) "Hello from live-wasm!\n")

  (func (export "_start")
    ;; One iovec at offset 0: { pointer = 16, length = 22 }.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 22))
    ;; Write it to stdout (fd 1); the byte count goes to offset 8.
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
