;; testmod.wat, edited: another line, another answer.
(module
  (import "lib/console" "memory" (memory 1))
  (import "lib/console" "print" (func $print (param i32 i32)))
  (data (i32.const 0x2000) "test function, edited live")
  (func (export "function") (param $n i32) (result i32)
    (call $print (i32.const 0x2000) (i32.const 26))
    (i32.mul (local.get $n) (local.get $n))))
