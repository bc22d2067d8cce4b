from robotlib.backbone import Backbone
