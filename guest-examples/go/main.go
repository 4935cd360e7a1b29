// A WASI command in Go that uses a function from a sibling module, `testmod`
// (testmod.wat, beside this file): live-wasm links it on first call.
package main

import "fmt"

//go:wasmimport testmod function
func function(x int32) int32

func main() {
	fmt.Println("Hello from Go!")
	fmt.Printf("testmod.function(20) = %d\n", function(20))
}
