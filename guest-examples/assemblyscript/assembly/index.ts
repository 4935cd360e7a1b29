// A WASI command in AssemblyScript that uses a function from a sibling module,
// `testmod` (testmod.wat, beside package.json): live-wasm links it on first call.

@external("testmod", "function")
declare function testmodFunction(x: i32): i32;

console.log("Hello from AssemblyScript!");
console.log("testmod.function(20) = " + testmodFunction(20).toString());
