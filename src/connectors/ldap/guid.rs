//! Active Directory's `objectGUID`: 16 bytes in the order Windows keeps a `GUID` struct, so
//! the first three fields (4, 2 and 2 bytes) are little-endian and the last 8 bytes are in
//! order. Rendered as Microsoft does (`Guid.ToString()`, what PowerShell's
//! `Get-ADUser` shows), lower-case and without braces:
//! `{2b1e4d0a-...}` in ADSI Edit is `2b1e4d0a-...` here.

/// The GUID's text form; `None` unless `bytes` is 16 bytes long.
pub fn render(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let data1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let data2 = u16::from_le_bytes([b[4], b[5]]);
    let data3 = u16::from_le_bytes([b[6], b[7]]);
    let tail: String = b[10..].iter().map(|byte| format!("{byte:02x}")).collect();
    Some(format!(
        "{data1:08x}-{data2:04x}-{data3:04x}-{:02x}{:02x}-{tail}",
        b[8], b[9]
    ))
}
