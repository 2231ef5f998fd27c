//! The little XML a package keeps (its table of contents, PackageInfo, Distribution), read into
//! a tree of elements: small documents, bounded by the size the caller read.

use crate::error::FormatError;
use quick_xml::events::Event;
use std::io;

/// Elements nested deeper than this are no package's.
const MAX_DEPTH: usize = 256;

/// One element: its name, attributes, the text directly inside it, and its child elements.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of child `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The first element named `name` at any depth below, depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }
}

/// The root element of `xml`, the document `what` names in errors.
pub fn parse(xml: &str, what: &'static str) -> io::Result<Element> {
    let bad = |at: u64, problem: String| FormatError::io(what, at, problem);
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| bad(at, format!("not well-formed XML ({e})")))?;
        let open = |e: &quick_xml::events::BytesStart| -> io::Result<Element> {
            let mut element = Element {
                name: e.name().as_ref().to_string(),
                ..Element::default()
            };
            for a in e.attributes() {
                let a = a.map_err(|e| bad(at, format!("a damaged attribute ({e})")))?;
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| bad(at, format!("a damaged attribute ({e})")))?;
                let key = a.key.as_ref().to_string();
                element.attrs.push((key, value.into_owned()));
            }
            Ok(element)
        };
        let top = stack.last_mut().expect("the document is at the bottom");
        match event {
            Event::Start(e) => {
                if stack.len() > MAX_DEPTH {
                    return Err(bad(at, format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let element = open(&e)?;
                stack.push(element);
            }
            Event::Empty(e) => {
                let element = open(&e)?;
                top.children.push(element);
            }
            Event::End(_) => {
                let done = stack.pop().expect("an element is open");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    _ => return Err(bad(at, "an end tag that closes nothing".into())),
                }
            }
            Event::Text(t) => top.text.push_str(&t.xml10_content()),
            Event::CData(t) => top.text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => top.text.push(c),
                _ => match quick_xml::escape::resolve_predefined_entity(&r) {
                    Some(s) => top.text.push_str(s),
                    None => return Err(bad(at, format!("an unknown entity &{};", &*r))),
                },
            },
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().expect("the document");
    match (stack.is_empty(), document.children.len()) {
        (true, 1) => Ok(document.children.remove(0)),
        _ => Err(bad(
            xml.len() as u64,
            "not one root element, or one left open".into(),
        )),
    }
}
