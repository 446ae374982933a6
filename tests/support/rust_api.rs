//! The public items of the Rust SDK (guest/src), read from its sources with `syn`, and whether
//! their docs show an example: for tests/docs.rs, which requires one per item so that the
//! SDK's rustdoc is a reference with an example for every function, type, method, constant,
//! macro and module. (`#![deny(missing_docs)]` already requires the docs themselves.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use syn::{Attribute, ImplItem, Item, TraitItem, UseTree, Visibility};

/// What the check found: each public item without a code block in its docs (by its path),
/// and how many public items it looked at.
pub struct Report {
    pub without_example: Vec<String>,
    pub checked: usize,
}

/// The public items of the crate whose root is `lib` (e.g. guest/src/lib.rs).
pub fn check(lib: &Path) -> Report {
    let root = parse(lib);
    let mut defined = BTreeSet::new();
    let mut reexported = BTreeSet::new();
    collect(&root.items, &module_dir(lib, true), true, &mut defined, &mut reexported);
    let mut walk = Walk { defined, reexported, without_example: Vec::new(), checked: 0 };
    walk.docs("tagpolicy_guest (the crate)", &root.attrs);
    walk.items(&root.items, &module_dir(lib, true), "tagpolicy_guest", true);
    Report { without_example: walk.without_example, checked: walk.checked }
}

fn parse(file: &Path) -> syn::File {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Where the files of a module's submodules are: beside lib.rs, else in a folder named after
/// the module file.
fn module_dir(file: &Path, is_root: bool) -> PathBuf {
    let parent = file.parent().unwrap().to_path_buf();
    if is_root { parent } else { parent.join(file.file_stem().unwrap()) }
}

fn is_public(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

/// `#[doc(hidden)]`, `#[cfg(test)]` or `#[cfg(doctest)]`: not part of the documented API.
fn is_hidden(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| match &attr.meta {
        syn::Meta::List(list) if list.path.is_ident("doc") => {
            list.tokens.to_string().contains("hidden")
        }
        syn::Meta::List(list) if list.path.is_ident("cfg") => {
            let condition = list.tokens.to_string();
            condition.contains("test") || condition.contains("doctest")
        }
        _ => false,
    })
}

fn doc_text(attrs: &[Attribute]) -> String {
    let mut text = String::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("doc")) {
        if let syn::Meta::NameValue(value) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(line), .. }) = &value.value
        {
            text.push_str(&line.value());
            text.push('\n');
        }
    }
    text
}

/// The file of `mod name;` declared in a module whose submodules live in `dir`.
fn module_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.is_file() { flat } else { dir.join(name).join("mod.rs") }
}

/// The names of the items the crate defines, and of those its public modules re-export.
fn collect(
    items: &[Item],
    dir: &Path,
    public: bool,
    defined: &mut BTreeSet<String>,
    reexported: &mut BTreeSet<String>,
) {
    for item in items {
        let name = match item {
            Item::Struct(i) => Some(&i.ident),
            Item::Enum(i) => Some(&i.ident),
            Item::Fn(i) => Some(&i.sig.ident),
            Item::Trait(i) => Some(&i.ident),
            Item::Type(i) => Some(&i.ident),
            Item::Const(i) => Some(&i.ident),
            _ => None,
        };
        if let Some(name) = name {
            defined.insert(name.to_string());
        }
        match item {
            Item::Use(i) if public && is_public(&i.vis) && !is_hidden(&i.attrs) => {
                leaves(&i.tree, reexported)
            }
            Item::Mod(i) if !is_hidden(&i.attrs) => {
                let public = public && is_public(&i.vis);
                match &i.content {
                    Some((_, inner)) => collect(inner, dir, public, defined, reexported),
                    None => {
                        let file = module_file(dir, &i.ident.to_string());
                        collect(
                            &parse(&file).items,
                            &module_dir(&file, false),
                            public,
                            defined,
                            reexported,
                        )
                    }
                }
            }
            _ => {}
        }
    }
}

/// The names a `use` tree brings in.
fn leaves(tree: &UseTree, out: &mut BTreeSet<String>) {
    let name = match tree {
        UseTree::Path(path) => return leaves(&path.tree, out),
        UseTree::Group(group) => return group.items.iter().for_each(|tree| leaves(tree, out)),
        UseTree::Name(name) => name.ident.to_string(),
        UseTree::Rename(rename) => rename.rename.to_string(),
        UseTree::Glob(_) => "*".to_string(),
    };
    out.insert(name);
}

struct Walk {
    /// Names defined in the crate (their docs are checked where they are defined).
    defined: BTreeSet<String>,
    /// Names re-exported by public modules: a `pub` item of a private module is public when
    /// its name is among them.
    reexported: BTreeSet<String>,
    without_example: Vec<String>,
    checked: usize,
}

impl Walk {
    /// Whether an item of a module (`public` or not) with `vis` and `name` is public.
    fn exposed(&self, public: bool, vis: &Visibility, name: &syn::Ident) -> bool {
        is_public(vis) && (public || self.reexported.contains(&name.to_string()))
    }

    fn docs(&mut self, name: &str, attrs: &[Attribute]) {
        self.checked += 1;
        if !doc_text(attrs).lines().any(|line| line.trim_start().starts_with("```")) {
            self.without_example.push(name.to_string());
        }
    }

    /// The items of a module at `path`; `public`: the module is part of the public API (its
    /// `pub` items are), else only the re-exported ones are.
    fn items(&mut self, items: &[Item], dir: &Path, path: &str, public: bool) {
        for item in items {
            match item {
                _ if is_hidden(item_attrs(item)) => {}
                Item::Fn(i) if self.exposed(public, &i.vis, &i.sig.ident) => {
                    self.docs(&format!("{path}::{}", i.sig.ident), &i.attrs)
                }
                Item::Struct(i) if self.exposed(public, &i.vis, &i.ident) => {
                    self.docs(&format!("{path}::{}", i.ident), &i.attrs)
                }
                Item::Enum(i) if self.exposed(public, &i.vis, &i.ident) => {
                    self.docs(&format!("{path}::{}", i.ident), &i.attrs)
                }
                Item::Type(i) if self.exposed(public, &i.vis, &i.ident) => {
                    self.docs(&format!("{path}::{}", i.ident), &i.attrs)
                }
                Item::Const(i) if self.exposed(public, &i.vis, &i.ident) => {
                    self.docs(&format!("{path}::{}", i.ident), &i.attrs)
                }
                Item::Static(i) if self.exposed(public, &i.vis, &i.ident) => {
                    self.docs(&format!("{path}::{}", i.ident), &i.attrs)
                }
                Item::Trait(i) if self.exposed(public, &i.vis, &i.ident) => {
                    let name = format!("{path}::{}", i.ident);
                    self.docs(&name, &i.attrs);
                    for member in &i.items {
                        match member {
                            TraitItem::Fn(f) => {
                                self.docs(&format!("{name}::{}", f.sig.ident), &f.attrs)
                            }
                            TraitItem::Const(c) => {
                                self.docs(&format!("{name}::{}", c.ident), &c.attrs)
                            }
                            TraitItem::Type(t) => {
                                self.docs(&format!("{name}::{}", t.ident), &t.attrs)
                            }
                            _ => {}
                        }
                    }
                }
                Item::Macro(i) if i.mac.path.is_ident("macro_rules") => {
                    let exported = i.attrs.iter().any(|attr| attr.path().is_ident("macro_export"));
                    if let (true, Some(name)) = (exported, &i.ident) {
                        self.docs(&format!("tagpolicy_guest::{name}!"), &i.attrs);
                    }
                }
                // Methods of a public type, wherever the `impl` is; trait impls are documented
                // by their traits.
                Item::Impl(i) if i.trait_.is_none() => {
                    let syn::Type::Path(ty) = &*i.self_ty else { continue };
                    let ty = ty.path.segments.last().unwrap().ident.to_string();
                    if !(self.reexported.contains(&ty) || public && self.defined.contains(&ty)) {
                        continue;
                    }
                    let owner = if public {
                        format!("{path}::{ty}")
                    } else {
                        format!("tagpolicy_guest::{ty}")
                    };
                    for member in &i.items {
                        if let ImplItem::Fn(f) = member
                            && is_public(&f.vis)
                            && !is_hidden(&f.attrs)
                        {
                            self.docs(&format!("{owner}::{}", f.sig.ident), &f.attrs);
                        }
                    }
                }
                // A re-export of an item defined elsewhere (the generated bindings of the
                // contract): its docs are the `pub use`'s, followed by the item's own.
                Item::Use(i) if public && is_public(&i.vis) => {
                    let mut names = BTreeSet::new();
                    leaves(&i.tree, &mut names);
                    let foreign: Vec<&String> =
                        names.iter().filter(|n| !self.defined.contains(*n)).collect();
                    match foreign.as_slice() {
                        [] => {}
                        [name] => self.docs(&format!("{path}::{name} (re-exported)"), &i.attrs),
                        _ => self.without_example.push(format!(
                            "{path}::{{{}}}: re-export each with its own `pub use` and example",
                            foreign.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
                Item::Mod(i) => {
                    let name = format!("{path}::{}", i.ident);
                    let module_public = public && is_public(&i.vis);
                    match &i.content {
                        Some((_, inner)) => {
                            if module_public {
                                self.docs(&name, &i.attrs);
                            }
                            self.items(inner, dir, &name, module_public);
                        }
                        None => {
                            let file = module_file(dir, &i.ident.to_string());
                            let parsed = parse(&file);
                            if module_public {
                                let attrs: Vec<Attribute> =
                                    i.attrs.iter().chain(&parsed.attrs).cloned().collect();
                                self.docs(&name, &attrs);
                            }
                            self.items(
                                &parsed.items,
                                &module_dir(&file, false),
                                &name,
                                module_public,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}
