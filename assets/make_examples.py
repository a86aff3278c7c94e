"""Write the example portraits into assets/ from the packages that ship them (public domain)."""

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def main() -> None:
    import skimage.data
    from matplotlib import cbook

    Image.fromarray(skimage.data.astronaut()).save(HERE / "astronaut.png")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        Image.open(f).convert("RGB").save(HERE / "grace_hopper.png")


if __name__ == "__main__":
    main()
