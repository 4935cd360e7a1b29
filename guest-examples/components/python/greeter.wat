;; A component, written by hand, that provides demo:greeter/api@0.1.0 to app.wasm:
;;   greeting: func() -> string
;; Edit the text (keep the \00 that ends it) and save: app.wasm runs again, no build.
(component
  (core module $greeter
    (memory (export "memory") 1)
    (data (i32.const 16) "hello from greeter.wat\00")

    ;; A string result is returned through memory: the address of a (ptr, len)
    ;; pair, here at 0, for the UTF-8 text at 16 (its length counted up to the \00).
    (func (export "greeting") (result i32)
      (local $end i32)
      (local.set $end (i32.const 16))
      (block $done
        (loop $next
          (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
          (local.set $end (i32.add (local.get $end) (i32.const 1)))
          (br $next)))
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.sub (local.get $end) (i32.const 16)))
      (i32.const 0)))

  (core instance $core (instantiate $greeter))

  (func $greeting (result string)
    (canon lift (core func $core "greeting") (memory (core memory $core "memory")) string-encoding=utf8))

  (instance $api (export "greeting" (func $greeting)))
  (export "demo:greeter/api@0.1.0" (instance $api)
    (instance (export "greeting" (func (result string))))))
