;; testmod.wat: a module test.wat uses.
(module
  (import "lib/console" "memory" (memory 1))
  (import "lib/console" "print" (func $print (param i32 i32)))
  (data (i32.const 0x2000) "test function")
  (func (export "function") (param $n i32) (result i32)
    (call $print (i32.const 0x2000) (i32.const 13))
    (i32.mul (local.get $n) (i32.const 7))))
