"""`app.py eval cgan|stargan`: measure weights with independent reference classifiers (never the GAN's own D)."""
