;; lib/console: the memory the demo's modules share, and printing into stdout.
;; Each module keeps its strings in its own page of this memory:
;; test.wat at 0x1000, testmod.wat at 0x2000.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; write(ptr, len): bytes of the shared memory to stdout, through one iovec at 0.
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; print(ptr, len): the text, then a newline (kept at 32).
  (func $print (export "print") (param $ptr i32) (param $len i32)
    (call $write (local.get $ptr) (local.get $len))
    (i32.store8 (i32.const 32) (i32.const 10))
    (call $write (i32.const 32) (i32.const 1)))

  ;; print_i32(n): n in decimal, then a newline (digits built backwards at 64..96).
  (func (export "print_i32") (param $n i32)
    (local $at i32) (local $negative i32)
    (local.set $at (i32.const 96))
    (local.set $negative (i32.lt_s (local.get $n) (i32.const 0)))
    (if (local.get $negative) (then (local.set $n (i32.sub (i32.const 0) (local.get $n)))))
    (loop $digits
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (local.get $n)))
    (if (local.get $negative)
      (then
        (local.set $at (i32.sub (local.get $at) (i32.const 1)))
        (i32.store8 (local.get $at) (i32.const 45))))
    (call $print (local.get $at) (i32.sub (i32.const 96) (local.get $at)))))
