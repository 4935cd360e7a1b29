//! A component's big core modules, compiled on their own.
//!
//! wasmtime compiles a component as one unit. A component made by a build
//! tool carries big core modules that rarely change: componentize-py's output
//! is 18 MB, of which CPython's 6 MB of code is the same after every edit of
//! the script, and only the 11 MB snapshot of the interpreter's memory (data,
//! with 5 KB of code) changes. Compiled whole, each edit costs seconds even
//! when every function hits Cranelift's incremental cache: every function is
//! still translated, hashed and linked again.
//!
//! So a component is split before it is compiled: each big core module it
//! embeds becomes an import of a core module of the same type, at the same
//! place (so no index moves), and is compiled as a core module, cached by its
//! own bytes. What is left, the shell, is small and quick to compile; linking
//! gives it the modules back ([`Part::name`]), and instantiating the shell
//! instantiates them exactly where they were.
//!
//! The shell declares the modules' types at its start, so only a component
//! that declares no core types of its own is split (the new types would move
//! its indices); anything else, or a shell wasmtime refuses, is compiled whole.

use std::ops::Range;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    ComponentImportSection, ComponentTypeRef, CoreTypeSection, EntityType, ModuleType, RawSection,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Core modules this big or bigger are compiled on their own.
pub(crate) const SPLIT_FROM: usize = 64 << 10;

/// What the shell imports instead of an embedded module: this, then `h` and
/// the hash of the module's bytes (a name is one module, in every component).
const PART_PREFIX: &str = "live-wasm-split-module-";

/// A component split into a shell and its big core modules.
pub(crate) struct Split {
    /// The component without the big modules, which it imports instead.
    pub shell: Vec<u8>,
    /// The modules, in the order they were in the component.
    pub parts: Vec<Part>,
}

/// A core module taken out of a component.
pub(crate) struct Part {
    /// The name the shell imports it by.
    pub name: String,
    /// Where its bytes are in the component.
    pub range: Range<usize>,
}

/// True for an import that stands for a module [`split`] took out.
pub(crate) fn is_part(import: &str) -> bool {
    import.starts_with(PART_PREFIX)
}

/// Splits `component`, or `None` when it has no big module or cannot be split
/// without moving an index (see the module's documentation).
pub(crate) fn split(component: &[u8]) -> Option<Split> {
    let mut types = CoreTypeSection::new();
    let mut parts = Vec::new();
    let mut rest = Vec::new();
    for section in sections(component)? {
        match section.id {
            CORE_TYPE_SECTION => return None,
            CORE_MODULE_SECTION => {
                let module = &component[section.body.clone()];
                if module.len() >= SPLIT_FROM {
                    let hash = xxhash_rust::xxh3::xxh3_128(module);
                    let name = format!("{PART_PREFIX}h{hash:032x}");
                    types.ty().module(&module_type(module)?);
                    let mut import = ComponentImportSection::new();
                    import.import(&name, ComponentTypeRef::Module(types.len() - 1));
                    rest.push(Piece::Import(import));
                    parts.push(Part {
                        name,
                        range: section.body,
                    });
                } else {
                    rest.push(Piece::Raw(section));
                }
            }
            _ => rest.push(Piece::Raw(section)),
        }
    }
    if parts.is_empty() {
        return None;
    }
    let mut shell = wasm_encoder::Component::new();
    shell.section(&types);
    for piece in &rest {
        match piece {
            Piece::Import(import) => shell.section(import),
            Piece::Raw(section) => shell.section(&RawSection {
                id: section.id,
                data: &component[section.body.clone()],
            }),
        };
    }
    Some(Split {
        shell: shell.finish(),
        parts,
    })
}

const CORE_MODULE_SECTION: u8 = 1;
const CORE_TYPE_SECTION: u8 = 3;

/// A top-level section of a component: its id and where its body is.
struct Section {
    id: u8,
    body: Range<usize>,
}

/// What the shell is made of, in order.
enum Piece {
    Import(ComponentImportSection),
    Raw(Section),
}

/// The top-level sections of a component (a module, or malformed bytes: `None`).
fn sections(component: &[u8]) -> Option<Vec<Section>> {
    const HEADER: &[u8] = b"\0asm\x0d\0\x01\0";
    if !component.starts_with(HEADER) {
        return None;
    }
    let mut sections = Vec::new();
    let mut at = HEADER.len();
    while at < component.len() {
        let id = component[at];
        let (size, after) = leb_u32(component, at + 1)?;
        let end = after.checked_add(size as usize)?;
        if end > component.len() {
            return None;
        }
        sections.push(Section {
            id,
            body: after..end,
        });
        at = end;
    }
    Some(sections)
}

/// An unsigned LEB128 `u32` at `at`, and where it ends.
fn leb_u32(bytes: &[u8], mut at: usize) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

/// The type of a core module: its types (index for index), imports and
/// exports. `None` if the module cannot be read.
fn module_type(module: &[u8]) -> Option<ModuleType> {
    let mut reencode = RoundtripReencoder;
    let mut ty = ModuleType::new();
    // Each index space: what the imports define, then the module itself.
    let (mut funcs, mut tables, mut memories, mut globals, mut tags) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.ok()? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group.ok()?;
                    if group.is_explicit_rec_group() {
                        let types = group
                            .into_types()
                            .map(|sub| reencode.sub_type(sub))
                            .collect::<Result<Vec<_>, _>>()
                            .ok()?;
                        ty.ty().rec(types);
                    } else {
                        for sub in group.into_types() {
                            ty.ty().subtype(&reencode.sub_type(sub).ok()?);
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    let entity = reencode.entity_type(import.ty).ok()?;
                    match import.ty {
                        TypeRef::Func(index) | TypeRef::FuncExact(index) => funcs.push(index),
                        TypeRef::Table(_) => tables.push(entity),
                        TypeRef::Memory(_) => memories.push(entity),
                        TypeRef::Global(_) => globals.push(entity),
                        TypeRef::Tag(_) => tags.push(entity),
                    }
                    ty.import(import.module, import.name, entity);
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    funcs.push(index.ok()?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = reencode.table_type(table.ok()?.ty).ok()?;
                    tables.push(EntityType::Table(table));
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = reencode.memory_type(memory.ok()?).ok()?;
                    memories.push(EntityType::Memory(memory));
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = reencode.global_type(global.ok()?.ty).ok()?;
                    globals.push(EntityType::Global(global));
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    tags.push(EntityType::Tag(reencode.tag_type(tag.ok()?).ok()?));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.ok()?;
                    exports.push((export.name, export.kind, export.index as usize));
                }
            }
            _ => {}
        }
    }
    for (name, kind, index) in exports {
        let entity = match kind {
            ExternalKind::Func | ExternalKind::FuncExact => {
                EntityType::Function(*funcs.get(index)?)
            }
            ExternalKind::Table => *tables.get(index)?,
            ExternalKind::Memory => *memories.get(index)?,
            ExternalKind::Global => *globals.get(index)?,
            ExternalKind::Tag => *tags.get(index)?,
        };
        ty.export(name, entity);
    }
    Some(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component embedding a module of `fields` (text), instantiating it and
    /// exporting its function `f` as `f`.
    fn component_with(fields: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component
                 (core module $m {fields})
                 (core instance $i (instantiate $m))
                 (func (export "f") (result u32) (canon lift (core func $i "f"))))"#
        ))
        .expect("component")
    }

    /// The fields of a module exporting `f` returning `value`, padded past
    /// [`SPLIT_FROM`].
    fn big_module(value: u32) -> String {
        let padding = "\\00".repeat(SPLIT_FROM);
        format!(
            r#"(memory 2)
               (data (i32.const 0) "{padding}")
               (func (export "f") (result i32) i32.const {value})"#
        )
    }

    #[test]
    fn small_components_and_modules_are_not_split() {
        assert!(
            split(&component_with(
                r#"(func (export "f") (result i32) i32.const 1)"#
            ))
            .is_none()
        );
        assert!(split(&wat::parse_str("(module)").expect("module")).is_none());
        assert!(split(b"\0asm\x0d\0\x01\0\x01\xff").is_none(), "truncated");
    }

    #[test]
    fn a_split_component_runs_as_the_whole_one() {
        let component = component_with(&big_module(42));
        let split = split(&component).expect("split");
        assert_eq!(split.parts.len(), 1);
        assert!(split.shell.len() < 1024, "the data went with the module");
        assert!(is_part(&split.parts[0].name));

        let engine = wasmtime::Engine::default();
        let shell = wasmtime::component::Component::new(&engine, &split.shell).expect("shell");
        let module =
            wasmtime::Module::new(&engine, &component[split.parts[0].range.clone()]).expect("part");
        let mut linker = wasmtime::component::Linker::<()>::new(&engine);
        linker
            .root()
            .module(&split.parts[0].name, &module)
            .expect("define");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &shell).expect("instantiate");
        let f = instance
            .get_typed_func::<(), (u32,)>(&mut store, "f")
            .expect("f");
        assert_eq!(f.call(&mut store, ()).expect("call"), (42,));
    }

    #[test]
    fn a_component_declaring_core_types_is_compiled_whole() {
        let component = wat::parse_str(format!(
            r#"(component
                 (core type (module))
                 (core module $m {})
                 (core instance (instantiate $m)))"#,
            big_module(1)
        ))
        .expect("component");
        assert!(split(&component).is_none());
    }
}
