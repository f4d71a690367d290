"""Starting point for a Gradio app in the sandbox: greet a name, louder with the slider."""

import gradio as gr


def greet(name: str, intensity: float) -> str:
    return f"Hello, {name}" + "!" * int(intensity)


demo = gr.Interface(fn=greet, inputs=["text", "slider"], outputs=["text"])

demo.launch()
