;; test.wat, first version: print a line.
(module
  (import "lib/console" "memory" (memory 1))
  (import "lib/console" "print" (func $print (param i32 i32)))
  (data (i32.const 0x1000) "Running test.wat")
  (func (export "_start")
    (call $print (i32.const 0x1000) (i32.const 16))))
