//! Deterministic annotation-like records (an image, a label, a bounding
//! box) and their encodings as JSON, JSON lines and CSV.

use serde::{Deserialize, Serialize};

const LABELS: [&str; 4] = ["car", "person", "bicycle", "traffic_light"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub image: String,
    pub label: String,
    /// x, y, width, height in pixels.
    pub bbox: [u32; 4],
}

/// The `index`-th record: the same index always gives the same record.
pub fn record(index: u64) -> Record {
    let mix = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let x = (mix % 1200) as u32;
    let y = ((mix >> 12) % 700) as u32;
    Record {
        id: index,
        image: format!("images/{index:06}.jpg"),
        label: LABELS[(mix % LABELS.len() as u64) as usize].to_owned(),
        bbox: [x, y, 16 + (mix >> 24) as u32 % 200, 16 + (mix >> 32) as u32 % 200],
    }
}

/// The file formats an export can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Jsonl,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// The records encoded in this format.
    pub fn encode(self, records: &[Record]) -> Result<String, serde_json::Error> {
        Ok(match self {
            Format::Json => serde_json::to_string_pretty(records)?,
            Format::Jsonl => {
                let mut text = String::new();
                for record in records {
                    text.push_str(&serde_json::to_string(record)?);
                    text.push('\n');
                }
                text
            }
            Format::Csv => {
                let mut text = String::from("id,image,label,x,y,width,height\n");
                for r in records {
                    let [x, y, w, h] = r.bbox;
                    text.push_str(&format!("{},{},{},{x},{y},{w},{h}\n", r.id, r.image, r.label));
                }
                text
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_encode_in_every_format() {
        assert_eq!(record(5), record(5));
        let records: Vec<Record> = (0..3).map(record).collect();
        let json: Vec<Record> = serde_json::from_str(&Format::Json.encode(&records).unwrap()).unwrap();
        assert_eq!(json, records);
        assert_eq!(Format::Jsonl.encode(&records).unwrap().lines().count(), 3);
        let csv = Format::Csv.encode(&records).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.lines().nth(1).unwrap().starts_with("0,images/000000.jpg,"));
    }
}
