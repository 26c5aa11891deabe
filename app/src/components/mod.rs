pub mod chart;
pub mod forms;
pub mod layout;
pub mod status;
pub mod ui;
