;; test.wat: print a line, then use a function of testmod.
;; testmod is loaded when `function` is first called: until testmod.wat
;; exists, the first line still prints, then the run reports it missing.
(module
  (import "lib/console" "memory" (memory 1))
  (import "lib/console" "print" (func $print (param i32 i32)))
  (import "lib/console" "print_i32" (func $print_i32 (param i32)))
  (import "testmod" "function" (func $function (param i32) (result i32)))
  (data (i32.const 0x1000) "Running test.wat")
  (func (export "_start")
    (call $print (i32.const 0x1000) (i32.const 16))
    (call $print_i32 (call $function (i32.const 6)))))
