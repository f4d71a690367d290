"""Starting point for a Streamlit app in the sandbox."""

import streamlit as st

st.write("Hello, world")
