"""Stage 1, the crawl (paper, section 3.2): candidate videos per scene from search engines, feeds, URL
lists or local folders; hours balanced per scene; downloads verified. See :mod:`tasks.crawl.stage`."""
