//! Pre-initialization, as Wizer does it: rewrites a module so that its *initial* state is a live
//! instance's state (linear memory as data segments, exported mutable globals as their init values).
//!
//! Why: an env that loads a large database in `configure` (tau-bench: MiBs) would otherwise carry it
//! as private, written memory in every instance, and every snapshot would copy it. Baked into the
//! module, the database becomes part of the memory image that wasmtime maps copy-on-write: all
//! instances share its pages, and `dirty::written_pages` reports only what an episode changed.
//!
//! The code, tables, imports and exports are copied byte for byte; only the memory, global, data(-count)
//! and start sections are rewritten. Modules this cannot represent faithfully (passive data segments,
//! several memories, 64-bit memories, reference-typed exported globals) are refused, and the caller
//! keeps the un-derived module.

use std::collections::HashMap;

use wasm_encoder::{
    ConstExpr, DataCountSection, DataSection, GlobalSection, GlobalType, Ieee32, Ieee64,
    MemorySection, MemoryType, Module, RawSection, SectionId, ValType,
};
use wasmparser::{DataKind, ExternalKind, Parser, Payload, TypeRef};
use wasmtime::Val;

use super::dirty::PAGE;

/// The state to bake in: the whole linear memory and the values of exported mutable globals by
/// export name.
pub(crate) struct LiveState<'a> {
    pub memory: &'a [u8],
    pub globals: &'a [(String, Val)],
}

/// Derives the pre-initialized module from the original `wasm`. The error says why a module cannot be
/// derived; it is a reason to keep the original, never a fault of the guest.
pub(crate) fn derive(wasm: &[u8], state: &LiveState<'_>) -> Result<Vec<u8>, String> {
    let layout = Layout::read(wasm)?;
    let mut values: HashMap<u32, ConstExpr> = HashMap::new();
    for (name, value) in state.globals {
        let index = layout
            .exported_globals
            .get(name.as_str())
            .ok_or_else(|| format!("no exported global `{name}`"))?;
        values.insert(*index, const_of(value)?);
    }
    let segments = nonzero_runs(state.memory);
    let wasm_pages = (state.memory.len() as u64).div_ceil(64 * 1024);

    let mut module = Module::new();
    let mut wrote_data = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        let raw = |id: SectionId, range: std::ops::Range<usize>| RawSection {
            id: id as u8,
            data: &wasm[range],
        };
        match payload {
            Payload::Version { .. } | Payload::CodeSectionEntry(_) | Payload::End(_) => {}
            // The start function already ran in the live instance; running it again would redo it.
            Payload::StartSection { .. } => {}
            Payload::TypeSection(r) => {
                module.section(&raw(SectionId::Type, r.range()));
            }
            Payload::ImportSection(r) => {
                module.section(&raw(SectionId::Import, r.range()));
            }
            Payload::FunctionSection(r) => {
                module.section(&raw(SectionId::Function, r.range()));
            }
            Payload::TableSection(r) => {
                module.section(&raw(SectionId::Table, r.range()));
            }
            Payload::TagSection(r) => {
                module.section(&raw(SectionId::Tag, r.range()));
            }
            Payload::ExportSection(r) => {
                module.section(&raw(SectionId::Export, r.range()));
            }
            Payload::ElementSection(r) => {
                module.section(&raw(SectionId::Element, r.range()));
            }
            Payload::MemorySection(r) => {
                let memory = r
                    .into_iter()
                    .next()
                    .ok_or("empty memory section")?
                    .map_err(|e| e.to_string())?;
                let mut section = MemorySection::new();
                section.memory(MemoryType {
                    minimum: wasm_pages.max(memory.initial),
                    maximum: memory.maximum,
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
                module.section(&section);
            }
            Payload::GlobalSection(r) => {
                let section_end = r.range().end;
                let mut section = GlobalSection::new();
                let entries: Vec<_> = r
                    .into_iter_with_offsets()
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                for (i, (offset, global)) in entries.iter().enumerate() {
                    let index = layout.imported_globals + i as u32;
                    match values.get(&index) {
                        Some(value) => {
                            section.global(
                                GlobalType {
                                    val_type: val_type(global.ty.content_type)?,
                                    mutable: global.ty.mutable,
                                    shared: false,
                                },
                                value,
                            );
                        }
                        None => {
                            let end = entries.get(i + 1).map_or(section_end, |(next, _)| *next);
                            section.raw(&wasm[*offset..end]);
                        }
                    }
                }
                module.section(&section);
            }
            Payload::DataCountSection { .. } => {
                module.section(&DataCountSection {
                    count: segments.len() as u32,
                });
            }
            Payload::CodeSectionStart { range, .. } => {
                module.section(&raw(SectionId::Code, range));
            }
            Payload::DataSection(_) => {
                module.section(&data_section(state.memory, &segments));
                wrote_data = true;
            }
            Payload::CustomSection(r) => {
                module.section(&raw(SectionId::Custom, r.range()));
            }
            other => {
                return Err(format!(
                    "unsupported section {:?}",
                    other.as_section().map(|(id, _)| id)
                ));
            }
        }
    }
    if !wrote_data {
        module.section(&data_section(state.memory, &segments));
    }
    Ok(module.finish())
}

/// The initial linear memory of `wasm` up to its last initialized byte (zero beyond), or why it cannot
/// be known without instantiating (a data segment placed by a global, a passive segment).
pub(crate) fn initial_memory(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut memory = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::DataSection(r) = payload.map_err(|e| e.to_string())? {
            for segment in r {
                let segment = segment.map_err(|e| e.to_string())?;
                let DataKind::Active { offset_expr, .. } = segment.kind else {
                    return Err("passive data segments".into());
                };
                let mut ops = offset_expr.get_operators_reader();
                let offset = match ops.read().map_err(|e| e.to_string())? {
                    wasmparser::Operator::I32Const { value } => value as u32 as usize,
                    other => return Err(format!("a data segment placed by {other:?}")),
                };
                let end = offset + segment.data.len();
                if memory.len() < end {
                    memory.resize(end, 0);
                }
                memory[offset..end].copy_from_slice(segment.data);
            }
        }
    }
    Ok(memory)
}

/// What the rewrite needs to know before it starts.
struct Layout<'a> {
    imported_globals: u32,
    exported_globals: HashMap<&'a str, u32>,
}

impl<'a> Layout<'a> {
    fn read(wasm: &'a [u8]) -> Result<Layout<'a>, String> {
        let mut layout = Layout {
            imported_globals: 0,
            exported_globals: HashMap::new(),
        };
        let mut memories = 0;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::ImportSection(r) => {
                    for import in r.into_imports() {
                        match import.map_err(|e| e.to_string())?.ty {
                            TypeRef::Global(_) => layout.imported_globals += 1,
                            TypeRef::Memory(_) => return Err("the memory is imported".into()),
                            _ => {}
                        }
                    }
                }
                Payload::MemorySection(r) => {
                    for memory in r {
                        let memory = memory.map_err(|e| e.to_string())?;
                        if memory.memory64 || memory.shared || memory.page_size_log2.is_some() {
                            return Err("only a plain 32-bit memory can be pre-initialized".into());
                        }
                        memories += 1;
                    }
                }
                Payload::ExportSection(r) => {
                    for export in r {
                        let export = export.map_err(|e| e.to_string())?;
                        if export.kind == ExternalKind::Global {
                            layout.exported_globals.insert(export.name, export.index);
                        }
                    }
                }
                Payload::DataSection(r) => {
                    for segment in r {
                        let segment = segment.map_err(|e| e.to_string())?;
                        if matches!(segment.kind, DataKind::Passive) {
                            // `memory.init` could copy it again later: its bytes must stay as they were.
                            return Err("passive data segments".into());
                        }
                    }
                }
                _ => {}
            }
        }
        if memories != 1 {
            return Err(format!("{memories} memories (exactly one is supported)"));
        }
        Ok(layout)
    }
}

fn const_of(value: &Val) -> Result<ConstExpr, String> {
    Ok(match value {
        Val::I32(v) => ConstExpr::i32_const(*v),
        Val::I64(v) => ConstExpr::i64_const(*v),
        Val::F32(bits) => ConstExpr::f32_const(Ieee32::from(f32::from_bits(*bits))),
        Val::F64(bits) => ConstExpr::f64_const(Ieee64::from(f64::from_bits(*bits))),
        _ => return Err("an exported global of a vector or reference type".into()),
    })
}

fn val_type(ty: wasmparser::ValType) -> Result<ValType, String> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        other => return Err(format!("global of type {other}")),
    })
}

/// Maximal runs of pages holding a non-zero byte, as byte ranges: zero pages need no segment, since a
/// fresh memory is zero.
fn nonzero_runs(memory: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, page) in memory.chunks(PAGE).enumerate() {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let start = i * PAGE;
        let end = start + page.len();
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
}

fn data_section(memory: &[u8], segments: &[std::ops::Range<usize>]) -> DataSection {
    let mut section = DataSection::new();
    for range in segments {
        section.active(
            0,
            &ConstExpr::i32_const(range.start as i32),
            memory[range.clone()].iter().copied(),
        );
    }
    section
}
