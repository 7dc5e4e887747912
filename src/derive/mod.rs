//! Local work after generation: renditions from masters, overlay copy set
//! onto art, placements for the ad platforms' slots, and contact sheets. Nothing here calls a provider; everything
//! it makes is recorded in the store.

pub(crate) mod contact_sheet;
pub(crate) mod overlay;
pub(crate) mod placements;
pub(crate) mod renditions;
