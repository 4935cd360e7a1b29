//! A WASI command in Zig that uses a function from a sibling module, `testmod`
//! (testmod.wat, beside this file): live-wasm links it on first call.
const std = @import("std");

extern "testmod" fn function(x: i32) i32;

pub fn main(init: std.process.Init) !void {
    var buffer: [256]u8 = undefined;
    var stdout = std.Io.File.stdout().writer(init.io, &buffer);
    const out = &stdout.interface;
    try out.print("Hello from Zig!\n", .{});
    try out.print("testmod.function(20) = {d}\n", .{function(20)});
    try out.flush();
}
